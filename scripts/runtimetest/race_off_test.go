//go:build !race

package runtimetest

const raceBuild = false
