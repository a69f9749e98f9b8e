package main

import (
	"slices"
	"strings"
	"testing"
)

func TestHelpArgs(t *testing.T) {
	for _, tt := range []struct{ args, want []string }{
		{[]string{"--help"}, []string{"run", "--help"}},
		{[]string{"-h"}, []string{"run", "--help"}},
		{[]string{"help"}, []string{"run", "--help"}},
		{[]string{"help", "reap"}, []string{"reap", "--help"}},
		{[]string{"help", "cache", "prune"}, []string{"cache", "prune", "--help"}},
		{[]string{"--image", "x", "help"}, []string{"--image", "x", "help"}}, // a build named help
		{[]string{"reap", "--help"}, []string{"reap", "--help"}},
	} {
		if got := helpArgs(tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("helpArgs(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestExplainParseError(t *testing.T) {
	for _, tt := range []struct{ msg, want, not string }{
		{`unknown flag --rm, did you mean "-m"?`, "removes the sibling when the build ends", `"-m"`},
		{`unknown flag --detach`, "there is no --detach", ""},
		{`unknown flag --memroy, did you mean "--memory"?`, `did you mean "--memory"?`, ""},
		{`unknown flag --xq, did you mean "-e"?`, "unknown flag --xq", `"-e"`},
		{`unknown flag -x, did you mean "-e"?`, `did you mean "-e"?`, ""}, // a short flag may mean a short one
		{`missing flags: --image=IMAGE`, "missing flags: --image=IMAGE", ""},
	} {
		got := explainParseError(tt.msg)
		if !strings.Contains(got, tt.want) || tt.not != "" && strings.Contains(got, tt.not) {
			t.Errorf("explainParseError(%q) = %q, want %q and not %q", tt.msg, got, tt.want, tt.not)
		}
	}
}

// sibling-run --help shows run's flags, --image first among them.
func TestHelpShowsTheRunFlags(t *testing.T) {
	var c cli
	parser, err := newParser(&c)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	parser.Stdout = &out
	exited := false
	parser.Exit = func(int) { exited = true; panic("exit") }
	func() {
		defer func() { _ = recover() }()
		_, _ = parser.Parse(helpArgs([]string{"--help"}))
	}()
	help := out.String()
	if !exited || !strings.Contains(help, "--image=IMAGE") || !strings.Contains(help, "Other commands: reap") {
		t.Errorf("sibling-run --help does not show run's flags and the other commands:\n%s", help)
	}
}
