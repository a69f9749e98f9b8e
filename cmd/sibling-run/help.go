package main

import (
	"regexp"
	"strings"
)

// Help is run's detailed help: the build command's form comes first, since
// `sibling-run --help` shows run's help (see helpArgs), and the other
// commands, which the overview would have listed.
func (r *runCmd) Help() string {
	return `The build's command follows the flags: sibling-run --image golang:1.26 -- go test ./...
Everything after the first word that is not a flag belongs to the build; put --
before a command named like one of sibling-run's. Every flag also has an
environment variable, shown beside it.

Other commands: reap, cache ls, cache prune, version (sibling-run help COMMAND).`
}

// helpArgs turns the ways people ask for help into kong's: `sibling-run
// --help` (and -h) is run's help, the flags a user looks for, and
// `sibling-run help [COMMAND...]` is that command's help, run's by default,
// instead of a build named help.
func helpArgs(args []string) []string {
	switch {
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h"):
		return []string{"run", "--help"}
	case len(args) >= 1 && args[0] == "help":
		if len(args) == 1 {
			return []string{"run", "--help"}
		}
		return append(append([]string{}, args[1:]...), "--help")
	}
	return args
}

// dockerRunDefaults are docker run flags whose behaviour is sibling-run's
// default, or has no place in it: a pasted docker run line gets a word on
// them instead of a guess.
var dockerRunDefaults = map[string]string{
	"rm":     "sibling-run always removes the sibling when the build ends (docker run's --rm is its default; --keep leaves it for inspection)",
	"detach": "sibling-run runs the build in the foreground, streams its output and exits with its code; there is no --detach",
	"d":      "sibling-run runs the build in the foreground, streams its output and exits with its code; there is no -d",
	"name":   "sibling-run names the sibling itself, for its cleanup; use --label to find it",
}

var (
	unknownFlag  = regexp.MustCompile(`^unknown flag -{1,2}([^ ,]+)`)
	shortGuessed = regexp.MustCompile(`, did you mean "-[^-]"\?`)
)

// explainParseError rewrites kong's message for an unknown flag: a docker
// run flag that is a default here says so, and a long flag is never offered
// a short one as its likely meaning (--rm is not -m, the memory limit).
func explainParseError(msg string) string {
	m := unknownFlag.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if why, ok := dockerRunDefaults[m[1]]; ok {
		return strings.TrimSuffix(m[0], ",") + ": " + why
	}
	if strings.HasPrefix(m[0], "unknown flag --") {
		return shortGuessed.ReplaceAllString(msg, "")
	}
	return msg
}
