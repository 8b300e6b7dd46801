package main

import (
	"context"
	"fmt"

	"github.com/terrifictotes/tote"
)

func runVersion(_ context.Context, e *env, args []string) error {
	f := newFlags(e, "version", "", "Prints tote's version, Go toolchain and platform.")
	if err := f.parse(args, 0); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "tote", tote.BuildInfo())
	return nil
}
