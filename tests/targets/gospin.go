// tests/targets/gospin.go - a Go service in miniature for the sampler: Go
// binaries carry no .eh_frame, so their stacks come from frame pointers.
//
// Burns CPU in main.leafGo <- main.midGo <- main.topGo <- main.main and prints
// "ready PID" on stdout once running; runs until killed.
package main

import (
	"fmt"
	"os"
)

//go:noinline
func leafGo(x uint64) uint64 {
	for i := 0; i < 200000; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func midGo(x uint64) uint64 { return leafGo(x) + 1 }

//go:noinline
func topGo(x uint64) uint64 { return midGo(x) ^ 3 }

func main() {
	fmt.Printf("ready %d\n", os.Getpid())
	var x uint64 = 1
	for {
		x = topGo(x)
	}
}
