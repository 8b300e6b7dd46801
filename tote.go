// Package tote is the pipeline that moves Terrific Totes' operational
// database (totesys) into a data lake and on into a star-schema warehouse.
//
// The root package holds the few domain types every part shares and that
// depend on nothing: the stages (Stage), the one error type that says where
// in the pipeline something went wrong (Error), whether trying again can
// help (KindOf, the one retry policy), and the tool's version.
// Everything else has a package of its own, named after what it owns: the
// source model (totesys) and the warehouse model (star), the lake, the
// stages (extract, transform, warehouse for the load), one pass of them
// (pipeline), the daemon, alerts, and cmd/tote, the command line.
package tote

import (
	"runtime"
	"runtime/debug"
)

// Stage is one stage of the pipeline.
type Stage string

// The stages, in the order a pass runs them.
const (
	Extract   Stage = "extract"
	Transform Stage = "transform"
	Load      Stage = "load"
	// Publish brings the star's Iceberg tables up to the loaded batches
	// (package iceberg); a pass runs it after Load when publishing is on.
	Publish Stage = "publish"
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
