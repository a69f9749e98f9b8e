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
	for _, node := range allNodes(parser.Model.Node) {
		for _, flag := range node.Flags {
			if flag.Name == "help" || flag.Name == "version" {
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
		"artifact", "artifact-max-size", "keep-escaping-links", "secret-names", "cache", "volume",
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

// A build command spelled like one of sibling-run's commands, after flags of
// run, is the build's command: it is never taken for the command and dropped.
func TestBuildCommandNamedLikeASubcommandIsTheBuilds(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		wantCommand string // the command kong selects
		wantBuild   []string
	}{
		{[]string{"--image", "img", "run"}, "run", []string{"run"}},
		{[]string{"--image", "img", "reap"}, "run", []string{"reap"}},
		{[]string{"--image", "img", "version"}, "run", []string{"version"}},
		{[]string{"--image", "img", "cache", "ls"}, "run", []string{"cache", "ls"}},
		{[]string{"--image", "img", "wait-tcp", "db:5432"}, "run", []string{"wait-tcp", "db:5432"}},
		{[]string{"--log-level", "debug", "--image", "img", "version", "--keep"}, "run", []string{"version", "--keep"}},
		{[]string{"-w", "/tmp", "--image=img", "run", "make"}, "run", []string{"run", "make"}},
		{[]string{"--image", "img", "make", "run"}, "run", []string{"make", "run"}},
		{[]string{"--image", "img", "--", "version"}, "run", []string{"--", "version"}},
		{[]string{"run", "--image", "img", "run"}, "run", []string{"run"}},
		{[]string{"version"}, "version", nil},
		{[]string{"--log-level", "warn", "version"}, "version", nil},
		{[]string{"reap", "--dry-run"}, "reap", nil},
		{[]string{"--image", "img", "ls", "-la", "--image", "x", "--", "y"}, "run", []string{"ls", "-la", "--image", "x", "--", "y"}},
		{[]string{"run", "--image", "img", "sh", "-c", "exit 3"}, "run", []string{"sh", "-c", "exit 3"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var c cli
			parser, err := newParser(&c)
			if err != nil {
				t.Fatal(err)
			}
			kctx, err := parser.Parse(withRunNamed(parser, tc.args))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if got := strings.Fields(kctx.Command())[0]; got != tc.wantCommand {
				t.Errorf("command %q, want %q", got, tc.wantCommand)
			}
			if strings.Join(c.Run.Command, " ") != strings.Join(tc.wantBuild, " ") {
				t.Errorf("build command %q, want %q", c.Run.Command, tc.wantBuild)
			}
		})
	}
}

// An unknown flag before the build's command stays an error, whether run is
// named or not: it is not taken for the build's command.
func TestUnknownFlagBeforeTheCommandIsAnError(t *testing.T) {
	for _, args := range [][]string{
		{"--image", "img", "--no-such-flag", "true"},
		{"run", "--image", "img", "--no-such-flag", "true"},
	} {
		var c cli
		parser, err := newParser(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(withRunNamed(parser, args)); err == nil || !strings.Contains(err.Error(), "--no-such-flag") {
			t.Errorf("%q: err %v, want one about --no-such-flag", args, err)
		}
	}
}

// Each environment variable sets one flag of one command: a variable shared
// by run and reap (say, a dry run set on the agent for its builds) would
// quietly change the other command too.
func TestEveryEnvironmentVariableSetsOneFlag(t *testing.T) {
	parser, err := kong.New(&cli{})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, node := range allNodes(parser.Model.Node) {
		for _, flag := range node.Flags {
			for _, env := range flag.Envs {
				where := node.Path() + " --" + flag.Name
				if other, ok := owner[env]; ok && other != where {
					t.Errorf("$%s sets both %s and %s", env, other, where)
				}
				owner[env] = where
			}
		}
	}
}

// allNodes is node and every command below it.
func allNodes(node *kong.Node) []*kong.Node {
	nodes := []*kong.Node{node}
	for _, child := range node.Children {
		nodes = append(nodes, allNodes(child)...)
	}
	return nodes
}

// A build gets a process limit unless it asks for none, so that a fork bomb
// stops at the limit instead of taking the host (issue 21).
func TestPidsLimitHasADefault(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
		want int64
	}{
		{nil, nil, 4096},
		{[]string{"SIBLING_RUN_PIDS_LIMIT=100"}, nil, 100},
		{nil, []string{"--pids-limit=-1"}, -1},
	} {
		for _, kv := range tc.env {
			name, value, _ := strings.Cut(kv, "=")
			t.Setenv(name, value)
		}
		var c cli
		parser, err := newParser(&c)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parser.Parse(append([]string{"run", "--image", "img"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		cfg, err := c.Run.config()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.PidsLimit != tc.want {
			t.Errorf("env %v, args %v: PidsLimit = %d, want %d", tc.env, tc.args, cfg.PidsLimit, tc.want)
		}
	}
}
