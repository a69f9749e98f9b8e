package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// Every flag can be set from the environment (a Bamboo plan variable), has
// help, and is spelled as docker run spells it.
func TestEveryFlagHasAnEnvironmentVariableAndHelp(t *testing.T) {
	parser, err := kong.New(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, node := range append([]*kong.Node{parser.Model.Node}, parser.Model.Children...) {
		for _, flag := range node.Flags {
			if flag.Name == "help" {
				continue
			}
			names[flag.Name] = true
			if len(flag.Envs) == 0 {
				t.Errorf("%s --%s has no environment variable", node.Name, flag.Name)
			}
			if strings.TrimSpace(flag.Help) == "" {
				t.Errorf("%s --%s has no help", node.Name, flag.Name)
			}
		}
	}
	for _, want := range []string{
		"image", "workdir", "volumes-from", "env", "env-file", "pass-env", "pull", "pull-retries", "entrypoint", "user",
		"network", "memory", "cpus", "init", "stop-timeout", "log-driver", "label", "dry-run", "keep",
		"interactive", "tty", "host", "log-level", "log-format",
		"service", "service-timeout", "timeout", "pids-limit", "shm-size", "tmpfs",
		"artifact", "artifact-max-size", "cache", "volume",
	} {
		if !names[want] {
			all := make([]string, 0, len(names))
			for n := range names {
				all = append(all, n)
			}
			sort.Strings(all)
			t.Errorf("no flag --%s; the flags are %v", want, all)
		}
	}
}
