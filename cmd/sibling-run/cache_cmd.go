package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"

	"sibling-run/runner"
)

// cacheCmd lists and prunes the --cache volumes. It touches only volumes
// labelled as sibling-run caches.
type cacheCmd struct {
	Ls    cacheLsCmd    `cmd:"" help:"List the caches: job, path, size and last use, least recently used first."`
	Prune cachePruneCmd `cmd:"" help:"Remove caches: all, those unused for a while, or the least recently used beyond a size."`
}

type cacheLsCmd struct {
	Label []string `short:"l" sep:"none" env:"SIBLING_RUN_CACHE_LS_LABEL" help:"List only caches that carry this label, KEY=VALUE or KEY (repeatable)." placeholder:"KEY=VALUE"`
}

func (c *cacheLsCmd) Run(g *globals) error {
	labels, err := parseLabelFilters(c.Label)
	if err != nil {
		return err
	}
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	caches, err := runner.ListCaches(g.Ctx, api, labels, true, g.Log)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "JOB\tPATH\tSIZE\tLAST USED\tVOLUME")
	for _, ci := range caches {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", ci.Key, ci.Path, describeSize(ci), describeLastUse(ci, time.Now()), ci.Volume)
	}
	return w.Flush()
}

type cachePruneCmd struct {
	All       bool     `env:"SIBLING_RUN_CACHE_PRUNE_ALL" help:"Remove every cache (that the labels select)."`
	OlderThan string   `env:"SIBLING_RUN_CACHE_PRUNE_OLDER_THAN" help:"Remove caches last used longer ago than this, like 7d, 36h or 90m." placeholder:"DURATION"`
	MaxSize   string   `env:"SIBLING_RUN_CACHE_PRUNE_MAX_SIZE" help:"Remove the least recently used caches until the rest take at most this, like 10g or 500m." placeholder:"SIZE"`
	Label     []string `short:"l" sep:"none" env:"SIBLING_RUN_CACHE_PRUNE_LABEL" help:"Prune only caches that carry this label, KEY=VALUE or KEY (repeatable)." placeholder:"KEY=VALUE"`
	DryRun    bool     `env:"SIBLING_RUN_CACHE_PRUNE_DRY_RUN" help:"Only print what would be removed."`
}

func (c *cachePruneCmd) Run(g *globals) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	api, err := runner.Connect(g.Ctx, g.Host)
	if err != nil {
		return err
	}
	defer api.Close()
	removed, err := runner.PruneCaches(g.Ctx, api, opts, g.Log)
	verb := "removed"
	if c.DryRun {
		verb = "would remove"
	}
	for _, ci := range removed {
		fmt.Fprintf(g.Stdout, "%s %s (%s %s, %s, last used %s)\n", verb, ci.Volume, ci.Key, ci.Path, describeSize(ci), describeLastUse(ci, time.Now()))
	}
	return err
}

// options checks the flags; bad input removes nothing.
func (c *cachePruneCmd) options() (runner.PruneOptions, error) {
	labels, err := parseLabelFilters(c.Label)
	opts := runner.PruneOptions{All: c.All, MaxSize: -1, Labels: labels, DryRun: c.DryRun}
	if c.OlderThan != "" {
		d, err := parseAge(c.OlderThan)
		if err != nil || d <= 0 {
			return opts, fmt.Errorf("--older-than %q is not a positive duration; use one like 7d, 36h or 90m", c.OlderThan)
		}
		opts.OlderThan = d
	}
	if c.MaxSize != "" {
		size, err := units.RAMInBytes(c.MaxSize)
		if err != nil || size < 0 {
			return opts, fmt.Errorf("--max-size %q is not a size; use a number with an optional unit, like 10g or 500m", c.MaxSize)
		}
		opts.MaxSize = size
	}
	switch {
	case !c.All && c.OlderThan == "" && c.MaxSize == "":
		return opts, errors.New("cache prune: say what to remove: --all, --older-than DURATION or --max-size SIZE")
	case c.All && (c.OlderThan != "" || c.MaxSize != ""):
		return opts, errors.New("cache prune: --all removes every cache; give it alone, or --older-than and --max-size without it")
	}
	return opts, err
}

// parseAge reads a Go duration, or a whole number of days like 7d.
func parseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 16)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func describeSize(c runner.CacheInfo) string {
	if c.Size < 0 {
		return "?"
	}
	return units.BytesSize(float64(c.Size))
}

func describeLastUse(c runner.CacheInfo, now time.Time) string {
	if c.LastUsed.IsZero() {
		return "?"
	}
	ago := units.HumanDuration(now.Sub(c.LastUsed)) + " ago"
	if !c.LastUsedKnown {
		ago = "created " + ago // no run on this machine recorded a use
	}
	if c.InUse {
		ago += ", in use"
	}
	return ago
}
