//go:build race

package runtimetest

// raceBuild: the tests run with -race, so the function binaries are built
// with it too and a data race inside a handler fails its case.
const raceBuild = true
