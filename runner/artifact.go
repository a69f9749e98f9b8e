package runner

import (
	"bufio"
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/extract"
)

// artifact is one --artifact: a path in the sibling's own filesystem and the
// directory under the working directory that receives it, under its own name.
type artifact struct {
	Src  string // absolute and clean, in the sibling
	Dest string // relative to the working directory; "." for the directory itself
}

// artifactPlan is what to copy out of the sibling after its build.
type artifactPlan struct {
	artifacts []artifact
	maxSize   int64 // bytes that the artifacts of one run may take together
	// root is the working directory, held from before the build starts
	// (see artifactRoot).
	root *artifactRoot
}

// planArtifacts checks the artifacts and their size cap against the working
// directory workdir (absolute, symlinks resolved; given is the directory as
// the user named it) before anything is created.
func planArtifacts(specs []ArtifactSpec, maxSize int64, workdir, given string) (artifactPlan, error) {
	var plan artifactPlan
	if len(specs) == 0 {
		return plan, nil
	}
	if maxSize <= 0 {
		return plan, fmt.Errorf("--artifact-max-size of %d bytes leaves no room for artifacts; give a size like 500m or 4g", maxSize)
	}
	plan.maxSize = maxSize
	for _, a := range specs {
		if !path.IsAbs(a.Src) || path.Clean(a.Src) != a.Src || a.Src == "/" {
			return plan, fmt.Errorf("--artifact %s: the path in the sibling must be absolute and clean, and not /", a.Src)
		}
		rel, err := destUnderWorkdir(a.Dest, workdir, given)
		if err != nil {
			return plan, fmt.Errorf("--artifact %s: %w", a.Src, err)
		}
		plan.artifacts = append(plan.artifacts, artifact{Src: a.Src, Dest: rel})
	}
	return plan, nil
}

// destUnderWorkdir returns dest relative to workdir, or why it is not under it.
func destUnderWorkdir(dest, workdir, given string) (string, error) {
	if dest == "" {
		return ".", nil
	}
	var abs string
	if filepath.IsAbs(dest) {
		abs = filepath.Clean(dest)
		// An absolute DEST may spell the working directory as the user did,
		// before its symbolic links were resolved.
		if givenAbs, err := filepath.Abs(given); err == nil && givenAbs != workdir {
			if rel, ok := within(givenAbs, abs); ok {
				abs = filepath.Join(workdir, rel)
			}
		}
	} else {
		abs = filepath.Join(workdir, dest)
	}
	rel, ok := within(workdir, abs)
	if !ok {
		return "", fmt.Errorf("the destination %s is outside the working directory %s; name a directory under it", abs, workdir)
	}
	// The part of the destination that exists must not lead out through a
	// symbolic link (the copy itself is confined to the working directory
	// too, whatever appears there meanwhile).
	for existing := abs; ; existing = filepath.Dir(existing) {
		resolved, err := filepath.EvalSymlinks(existing)
		if err != nil && existing != "/" {
			continue
		}
		if _, ok := within(workdir, resolved); !ok {
			return "", fmt.Errorf("the destination %s leads outside the working directory %s through a symbolic link", abs, workdir)
		}
		break
	}
	return rel, nil
}

// within returns path relative to dir when path is dir or lies under it.
func within(dir, path string) (string, bool) {
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}

// copyArtifacts copies each artifact out of the exited sibling id into its
// destination under workdir, streaming the engine's archive straight into
// the extractor. It logs every artifact copied or missed and returns an
// ExitError with ExitArtifactsIncomplete naming those that were missed. It
// copies nothing when workdir's path no longer leads to the directory held
// in plan.root.
func copyArtifacts(ctx context.Context, api Engine, id, workdir string, plan artifactPlan, log zerolog.Logger) error {
	if len(plan.artifacts) == 0 {
		return nil
	}
	if err := plan.root.check(); err != nil {
		log.Error().Str("workdir", workdir).Msgf("refusing to copy the artifacts: %v", err)
		return &ExitError{Code: ExitArtifactsIncomplete, Err: fmt.Errorf("artifacts not copied: %w", err)}
	}
	budget := plan.maxSize
	var missed []string
	for _, a := range plan.artifacts {
		alog := log.With().Str("artifact", a.Src).Str("dest", filepath.Join(workdir, a.Dest)).Logger()
		started := time.Now()
		written, err := copyArtifact(ctx, api, id, plan.root, a, &budget, alog)
		if err != nil {
			alog.Error().Msg(err.Error())
			missed = append(missed, a.Src)
			continue
		}
		alog.Info().Int64("bytes", written).Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("copied the artifact")
	}
	if len(missed) > 0 {
		return &ExitError{Code: ExitArtifactsIncomplete, Err: fmt.Errorf("artifacts not copied completely: %s", strings.Join(missed, ", "))}
	}
	return nil
}

func copyArtifact(ctx context.Context, api Engine, id string, root *artifactRoot, a artifact, budget *int64, log zerolog.Logger) (int64, error) {
	// Bounded by silence, not length: a large artifact takes its time.
	ctx, idle := newIdleBound(ctx, engineCallTimeout)
	defer idle.stop()
	stream, _, err := api.CopyFromContainer(ctx, id, a.Src)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("artifact %s does not exist in the sibling", a.Src)
		}
		return 0, fmt.Errorf("copying artifact %s from the sibling: %w", a.Src, idle.explain(api.DaemonHost(), "artifact "+a.Src, err))
	}
	defer stream.Close()
	dest, err := root.openDest(a.Dest)
	if err != nil {
		return 0, fmt.Errorf("refusing the destination of artifact %s: %w", a.Src, err)
	}
	defer dest.Close()
	written, err := extract.Tar(bufio.NewReaderSize(idle.reader(stream), extract.BufferSize), dest, budget, log)
	if err != nil {
		return written, fmt.Errorf("artifact %s is incomplete: %w", a.Src, idle.explain(api.DaemonHost(), "artifact "+a.Src, err))
	}
	return written, nil
}
