// Package tote is the pipeline that moves Terrific Totes' operational
// database (totesys) into a data lake and on into a star-schema warehouse.
//
// The root package holds what every stage shares: for now, the tool's
// version. Each stage and each outside system has a package of its own:
// totesys (the source model), seed and simulate (a source to work on),
// postgres (connections and COPY), pgcluster (a throwaway server), and
// cmd/tote (the command line).
package tote

import (
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X github.com/terrifictotes/tote.version=v1.2.3".
var version string

// Version returns the tool's version: the one stamped at build time, else
// the module version Go recorded, else "dev".
func Version() string {
	if version != "" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// BuildInfo returns the version with the Go toolchain and platform, as
// `tote version` prints it.
func BuildInfo() string {
	return Version() + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")"
}
