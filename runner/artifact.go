package runner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/docker/go-units"
	"github.com/rs/zerolog"
)

// DefaultArtifactMaxSize is the default of --artifact-max-size.
const DefaultArtifactMaxSize = "4g"

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
	// root is the working directory, held from before the build starts;
	// see holdRoot.
	root *artifactRoot
}

// holdRoot opens the working directory for the artifacts, if there are any,
// before the build can move it. The caller closes plan.root.
func (plan *artifactPlan) holdRoot(workdir string) error {
	if len(plan.artifacts) == 0 {
		return nil
	}
	root, err := holdArtifactRoot(workdir)
	plan.root = root
	return err
}

// planArtifacts checks the --artifact entries and --artifact-max-size against
// the working directory workdir (absolute, symlinks resolved; given is the
// directory as the user named it) before anything is created.
func planArtifacts(entries []string, maxSize, workdir, given string) (artifactPlan, error) {
	var plan artifactPlan
	if len(entries) == 0 {
		return plan, nil
	}
	if maxSize == "" {
		maxSize = DefaultArtifactMaxSize
	}
	size, err := units.RAMInBytes(maxSize)
	if err != nil || size <= 0 {
		return plan, fmt.Errorf("--artifact-max-size %q is not a size; use a number with an optional unit, like 500m or 4g", maxSize)
	}
	plan.maxSize = size
	for _, entry := range entries {
		a, err := parseArtifact(entry, workdir, given)
		if err != nil {
			return plan, fmt.Errorf("--artifact %q: %w", entry, err)
		}
		plan.artifacts = append(plan.artifacts, a)
	}
	return plan, nil
}

// parseArtifact reads SRC[:DEST]. SRC is an absolute path in the sibling;
// DEST is a directory under the working directory, relative to it or
// absolute, and must stay under it even through the symbolic links that
// exist now.
func parseArtifact(entry, workdir, given string) (artifact, error) {
	src, dest, _ := strings.Cut(entry, ":")
	if !strings.HasPrefix(src, "/") {
		return artifact{}, errors.New("the path in the sibling must be absolute, like /out/reports")
	}
	src = path.Clean(src)
	if src == "/" {
		return artifact{}, errors.New("the sibling's whole filesystem cannot be an artifact; name a directory or file in it")
	}
	if strings.ContainsRune(entry, 0) {
		return artifact{}, errors.New("the entry contains a NUL byte")
	}
	rel, err := destUnderWorkdir(dest, workdir, given)
	if err != nil {
		return artifact{}, err
	}
	return artifact{Src: src, Dest: rel}, nil
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
func copyArtifacts(ctx context.Context, api *client.Client, id, workdir string, plan artifactPlan, log zerolog.Logger) error {
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

func copyArtifact(ctx context.Context, api *client.Client, id string, root *artifactRoot, a artifact, budget *int64, log zerolog.Logger) (int64, error) {
	stream, _, err := api.CopyFromContainer(ctx, id, a.Src)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return 0, fmt.Errorf("artifact %s does not exist in the sibling", a.Src)
		}
		return 0, fmt.Errorf("copying artifact %s from the sibling: %w", a.Src, err)
	}
	defer stream.Close()
	dest, err := root.openDest(a.Dest)
	if err != nil {
		return 0, fmt.Errorf("refusing the destination of artifact %s: %w", a.Src, err)
	}
	defer dest.Close()
	written, err := extractTar(bufio.NewReaderSize(stream, copyBufferSize), dest, budget, log)
	if err != nil {
		return written, fmt.Errorf("artifact %s is incomplete: %w", a.Src, err)
	}
	return written, nil
}
