package main

import (
	"flag"
	"os"
	"runtime"
	"strconv"
	"testing"
)

// TestMain runs up to four of this package's parallel tests at once even on
// a two-core machine, unless -test.parallel was given: the slow ones
// (crash recovery, three engines sharing the work) spend their time waiting
// on child engines, send gaps and leases, not on the CPU, and they are the
// longest path of the whole suite.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		_ = flag.Set("test.parallel", strconv.Itoa(max(4, runtime.GOMAXPROCS(0))))
	}
	os.Exit(m.Run())
}
