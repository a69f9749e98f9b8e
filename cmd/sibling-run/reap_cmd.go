package main

import (
	"fmt"
	"os"

	"sibling-run/runner"
)

// reapCmd removes siblings left behind by a sibling-run that was killed with
// SIGKILL or lost with its agent.
type reapCmd struct {
	DryRun bool `env:"SIBLING_RUN_DRY_RUN" help:"Only print what would be removed."`
}

func (r *reapCmd) Run(g *globals) error {
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	reaped, err := runner.Reap(g.Ctx, api, r.DryRun, g.Log)
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
