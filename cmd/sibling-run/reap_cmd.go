package main

import (
	"fmt"
	"os"

	"sibling-run/runner"
)

// reapCmd removes siblings left behind by a sibling-run that was killed with
// SIGKILL or lost with its agent.
type reapCmd struct {
	DryRun bool     `env:"SIBLING_RUN_DRY_RUN" help:"Only print what would be removed."`
	Label  []string `short:"l" sep:"none" env:"SIBLING_RUN_REAP_LABEL" help:"Look only at siblings and networks that carry this label, KEY=VALUE or KEY (repeatable; default: all of sibling-run's)." placeholder:"KEY=VALUE"`
}

func (r *reapCmd) Run(g *globals) error {
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	reaped, err := runner.Reap(g.Ctx, api, r.Label, r.DryRun, g.Log)
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	for _, s := range reaped {
		kind := ""
		if s.Network {
			kind = "network "
		}
		fmt.Fprintf(os.Stdout, "%s %s%.12s %s (owner %s", verb, kind, s.ID, s.Name, s.Owner)
		if s.BuildKey != "" {
			fmt.Fprintf(os.Stdout, ", build %s", s.BuildKey)
		}
		fmt.Fprintln(os.Stdout, ")")
	}
	return err
}
