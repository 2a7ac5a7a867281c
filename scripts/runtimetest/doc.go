// Package runtimetest runs every function's real binary under AWS's Lambda
// Runtime Interface Emulator and invokes it with every file in events/,
// checking the whole response against the expectations in cases_test.go.
// It has no code of its own outside the tests.
package runtimetest
