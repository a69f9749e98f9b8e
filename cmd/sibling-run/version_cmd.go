package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

type versionCmd struct{}

func (versionCmd) Run() error {
	fmt.Println(versionLine())
	return nil
}

// versionLine names the tool, its version (the commit for a build without
// one), the Go release and the platform: what a bug report needs.
func versionLine() string {
	v := version
	if v == "" {
		v = "(devel)"
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					v = "(devel " + s.Value[:12] + ")"
				}
			}
		}
	}
	return fmt.Sprintf("sibling-run %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
