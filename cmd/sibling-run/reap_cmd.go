package main

import (
	"errors"
	"fmt"

	"sibling-run/runner"
)

// reapCmd removes siblings left behind by a sibling-run that was killed with
// SIGKILL or lost with its agent; with --watch it keeps doing so as owners die.
type reapCmd struct {
	DryRun bool     `env:"SIBLING_RUN_REAP_DRY_RUN" help:"Only print what would be removed."`
	Watch  bool     `env:"SIBLING_RUN_REAP_WATCH" help:"Keep running: remove each sibling within 2 seconds of its sibling-run's death, after removing the orphans there are at the start (the agent image runs this beside the agent)."`
	Label  []string `short:"l" sep:"none" env:"SIBLING_RUN_REAP_LABEL" help:"Look only at siblings and networks that carry this label, KEY=VALUE or KEY (repeatable; default: all of sibling-run's)." placeholder:"KEY=VALUE"`
}

func (r *reapCmd) Run(g *globals) error {
	if r.Watch && r.DryRun {
		return &runner.ExitError{Code: runner.ExitToolFailure, Err: fmt.Errorf("--watch removes as owners die and cannot be a dry run; drop --dry-run or --watch")}
	}
	labels, err := parseLabelFilters(r.Label)
	if err != nil {
		return err
	}
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	if r.Watch {
		return runner.Watch(g.Ctx, api, labels, g.Log)
	}
	reaped, err := runner.Reap(g.Ctx, api, labels, r.DryRun, g.Log)
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	for _, s := range reaped {
		switch {
		case s.Network:
			fmt.Fprintf(g.Stdout, "%s network %.12s %s (owner %s", verb, s.ID, s.Name, s.Owner)
		case s.Volume:
			fmt.Fprintf(g.Stdout, "%s volume %s (owner %s", verb, s.Name, s.Owner)
		default:
			fmt.Fprintf(g.Stdout, "%s %.12s %s (owner %s", verb, s.ID, s.Name, s.Owner)
		}
		if s.BuildKey != "" {
			fmt.Fprintf(g.Stdout, ", build %s", s.BuildKey)
		}
		fmt.Fprintln(g.Stdout, ")")
	}
	var failed *runner.ReapFailures
	if errors.As(err, &failed) {
		// Each failure is logged as it happened; the last line sums up.
		return &runner.ExitError{Code: runner.ExitToolFailure, Err: fmt.Errorf("could not remove %d orphaned objects (see above); the others are removed; run sibling-run reap again once the engine answers", len(failed.Failures))}
	}
	return err
}
