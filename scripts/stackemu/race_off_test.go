//go:build !race

package stackemu

const raceBuild = false
