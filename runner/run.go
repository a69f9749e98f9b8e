package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/rs/zerolog"
)

// Result reports a build that ran to its end.
type Result struct {
	// ExitCode is the build's own exit code.
	ExitCode int
}

// Run runs cfg's build in a sibling container on the engine that api talks to
// and returns the build's exit code.
//
// Everything that can be checked is checked before anything is created (see
// plan), so bad input creates nothing. The sibling is attached and waited on
// before it starts, and Run returns only after every byte of its output has
// been copied to cfg.Stdout and cfg.Stderr. The sibling is removed on every path unless
// cfg.Keep is set, even when ctx is cancelled: then the build is sent the
// signal of ctx's cause (see Interrupted), killed after cfg.StopTimeout, and
// Run returns that cause. A build that runs longer than cfg.Timeout is
// stopped the same way, and Run returns a *TimeoutError. cfg.Services are
// started and ready before the sibling is created and removed after it.
//
// A failure of sibling-run or the engine is returned as an error with an exit
// code (ExitError: 125, or 126 and 127 when the command cannot be started).
//
// An engine that answers no ping for a while (see watchEngine) ends the run
// with an *EngineSilentError, whatever it was waiting for.
func Run(ctx context.Context, api *client.Client, cfg Config) (_ Result, err error) {
	watch := watchEngine(api, cfg.EngineWatchInterval, cfg.Log)
	defer func() { err = watch.end(err) }()
	p, err := plan(ctx, api, cfg)
	if err != nil {
		return Result{}, err
	}
	if short := p.secrets.tooShort(p.env); len(short) > 0 {
		cfg.Log.Warn().Strs("variables", short).Msgf("secret values shorter than %d characters are not masked where they appear in sibling-run's messages", minMaskedLength)
	}
	if cfg.DryRun {
		return Result{}, printSpec(cfg, p.spec, p.secrets)
	}
	sp := p.spec
	// Held from before the build: the artifacts are written into it and
	// the after-build pass walks it, whatever the build does to its path.
	held, err := holdArtifactRoot(p.workdir)
	switch {
	case err != nil && len(sp.artifacts.artifacts) > 0:
		return Result{}, toolFailure("%w", err)
	case err != nil:
		// What sibling-run cannot open, the agent, its user, cannot read.
		cfg.Log.Warn().Err(err).Msg("the working directory will not be checked after the build")
	}
	defer held.Close()
	sp.artifacts.root = held

	// This agent's orphans are cleared while the sibling is created, so the
	// build pays no time for it, and before the sibling starts.
	orphansCleared := make(chan struct{})
	go func() {
		defer close(orphansCleared)
		reapCtx, cancel := detached(ctx, removeTimeout)
		defer cancel()
		reapOwnOrphans(reapCtx, api, p.owner, cfg.Log)
	}()
	defer func() { <-orphansCleared }()

	if len(cfg.Services) > 0 {
		set, err := startServices(ctx, api, cfg, sp)
		defer set.remove(ctx, cfg.Keep)
		if err != nil {
			return Result{}, p.secrets.hide(err, p.env)
		}
	}
	if err := useBuildsNetwork(ctx, api, &sp, cfg.Log); err != nil {
		return Result{}, err
	}
	if sp.check != nil {
		image, err := imageConfig(ctx, api, cfg)
		if err != nil {
			return Result{}, err
		}
		if sp.Config, err = withWorkdirCheck(sp.Config, cfg, image, *sp.check); err != nil {
			return Result{}, toolFailure("%w", err)
		}
		cfg.Log.Debug().Stringer("identity", sp.check).Msg("the sibling checks its working directory before the build runs")
	}
	res, err := runSibling(ctx, api, cfg, sp, orphansCleared)
	return res, p.secrets.hide(err, p.env)
}

// runSibling creates, attaches, starts, waits for and removes the sibling. It
// starts the sibling only once orphansCleared is closed.
func runSibling(ctx context.Context, api *client.Client, cfg Config, sp spec, orphansCleared <-chan struct{}) (Result, error) {
	// Engine calls from here on must finish even when ctx is cancelled: a
	// create that completes after a SIGTERM still has to be removed.
	lifecycle := context.WithoutCancel(ctx)
	log := cfg.Log.With().Str("image", cfg.Image).Logger()

	created, err := createSibling(ctx, lifecycle, api, cfg, sp)
	if err != nil {
		return Result{}, err
	}
	id := created.ID
	log = log.With().Str("container", id[:12]).Logger()
	for _, w := range created.Warnings {
		log.Warn().Msg(w)
	}
	// Once the build may have run, whatever it left in the working
	// directory is neutralised on every way out, after the sibling is gone
	// (deferred before its removal, so run after it).
	buildMayHaveRun := false
	defer func() {
		if buildMayHaveRun {
			neutraliseWorkdir(sp.artifacts.root, cfg.KeepEscapingLinks, log)
		}
	}()
	engineLost := false // set when the engine went away during the build
	if cfg.Keep {
		defer log.Info().Str("id", id).Msg("kept the sibling for inspection; remove it with docker rm -f")
	} else {
		defer func() { removeSibling(lifecycle, api, id, engineLost, log) }()
	}
	if ctx.Err() != nil {
		return Result{}, context.Cause(ctx)
	}
	// The build's passwd entry is written before the attach: Podman
	// prepares the container when it is attached to, and then sets HOME
	// from the passwd it finds, or writes its own line with the working
	// directory as HOME.
	userCtx, cancelUser := detached(lifecycle, engineCallTimeout)
	ensurePasswdEntry(userCtx, api, id, sp.user, sp.caches.paths(), log)
	cancelUser()
	if sp.check != nil {
		copyCtx, cancelCopy := detached(lifecycle, engineCallTimeout)
		err := copyWorkdirCheck(copyCtx, api, id)
		cancelCopy()
		if err != nil {
			return Result{}, err
		}
	}

	att, err, answered := callWithin(engineCallTimeout, func() (*attachment, error) {
		return attach(lifecycle, api, id, cfg.Interactive)
	})
	if !answered {
		return Result{}, engineSilent(api, "attach to the sibling", engineCallTimeout)
	}
	if client.IsErrConnectionFailed(err) {
		engineLost = true
		return Result{}, lostEngine(api, "attaching to the sibling", err)
	}
	var cannotStart *cannotStartError
	if errors.As(err, &cannotStart) {
		return Result{}, &ExitError{Code: startFailureCode(err), Err: fmt.Errorf("starting %s in %s: %w", describeCommand(cfg), cfg.Image, err)}
	}
	if err != nil {
		return Result{}, toolFailure("attaching to the sibling for %s: %w", cfg.Image, err)
	}
	defer att.close()
	// The engine answers the wait's request at once and its body at the
	// exit; an engine that does not even answer must not hang the run.
	type exitChannels struct {
		status <-chan container.WaitResponse
		err    <-chan error
	}
	wait, _, answered := callWithin(engineCallTimeout, func() (exitChannels, error) {
		status, err := api.ContainerWait(lifecycle, id, container.WaitConditionNextExit)
		return exitChannels{status, err}, nil
	})
	if !answered {
		return Result{}, engineSilent(api, "answer the wait for the build's exit", engineCallTimeout)
	}
	waitC, waitErrC := wait.status, wait.err

	// Output that can no longer be passed on (sibling-run's stdout closed)
	// stops the build like a cancellation does; otherwise the build would
	// block on a full pipe forever.
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	head := &outputHead{} // to recognise an init that could not exec the command
	output := att.passOutput(head.tee(cfg.Stdout), head.tee(cfg.Stderr), cfg.TTY, abort)
	// A terminal's input is forwarded once it is raw (below): before that,
	// its line discipline would turn a ^D into an end of input.
	if cfg.Interactive && !cfg.TTY {
		att.forwardInput(cfg.Stdin, false)
	}

	// An orphan of a killed build of the same plan may still be writing into
	// this working directory: it must be gone before the next build starts.
	select {
	case <-orphansCleared:
	case <-ctx.Done(): // a signal while clearing: the sibling never starts
		return Result{}, context.Cause(ctx)
	}
	if ctx.Err() != nil {
		return Result{}, context.Cause(ctx)
	}
	log.Info().Str("workdir", sp.Config.WorkingDir).Msg("starting the build")
	// The terminal is raw only while the build runs: it is restored as soon
	// as the build has ended or is being stopped, so that each of
	// sibling-run's own lines starts at the left margin; the deferred call
	// covers the other ways out.
	restoreTerminal := func() {}
	if cfg.Interactive && cfg.TTY {
		restore, err := rawTerminal(cfg.Stdin)
		if err != nil {
			return Result{}, toolFailure("putting the terminal into raw mode: %w", err)
		}
		restoreTerminal = sync.OnceFunc(restore)
		defer restoreTerminal()
		att.forwardInput(cfg.Stdin, true)
	}
	// The build may already run, and print, when the engine dies before its
	// answer to the start arrives.
	buildMayHaveRun = true
	startCtx, cancelStart := detached(lifecycle, startTimeout)
	err = api.ContainerStart(startCtx, id, container.StartOptions{})
	startSilent := err != nil && startCtx.Err() != nil
	cancelStart()
	if startSilent {
		return Result{}, engineSilent(api, "start the build", startTimeout)
	}
	if client.IsErrConnectionFailed(err) {
		engineLost = true
		// What the build wrote before the engine died is passed on.
		select {
		case <-output:
		case <-time.After(engineTimeout):
		}
		return Result{}, lostEngine(api, "starting the build", err)
	} else if err != nil {
		return Result{}, &ExitError{Code: startFailureCode(err), Err: fmt.Errorf("starting %s in %s: %w", describeCommand(cfg), cfg.Image, err)}
	}
	started := time.Now()
	ctx, cancelTimeout := withBuildTimeout(ctx, cfg.Timeout)
	defer cancelTimeout()
	if cfg.TTY {
		sizeCtx, stopSizing := context.WithCancel(lifecycle)
		defer stopSizing()
		followTerminalSize(sizeCtx, api, id, cfg.Stdout)
	}

	exit := watchExit(waitC, waitErrC)
	var (
		interrupted error
		copyErr     error
		outputEnded bool
	)
	// stop stops the build, unless it has ended already (see
	// stopUnlessEnded), and fails when the engine did not answer a kill
	// or did not report the exit even after the kill.
	stop := func() error {
		answered := stopUnlessEnded(context.Cause(ctx), exit.done, outputEnded, func(cause error) bool {
			interrupted = cause
			restoreTerminal()
			return stopSibling(lifecycle, api, id, stopSignal(cause), cfg.StopTimeout, exit.done, log)
		})
		if !answered {
			engineLost = true // the removal gets one short try
			return engineSilent(api, "answer the kill that stops the build", engineCallTimeout)
		}
		if !closedWithin(exit.done, exitAfterKillTimeout) {
			return engineSilent(api, "report the build's exit after it was killed", exitAfterKillTimeout)
		}
		return nil
	}
	select {
	case <-exit.done:
	case <-ctx.Done():
		if err := stop(); err != nil {
			return Result{}, err
		}
	case copyErr = <-output:
		// The engine ends the output when the build exits; the exit's
		// report must follow.
		outputEnded = true
		select {
		case <-exit.done:
		case <-ctx.Done():
			if err := stop(); err != nil {
				return Result{}, err
			}
		case <-time.After(exitAfterOutputTimeout):
			return Result{}, engineSilent(api, "report the build's exit after its output ended", exitAfterOutputTimeout)
		}
	}
	// The engine ends the stream once the sibling has exited and all its
	// output is sent; reporting the exit before that would lose the last lines.
	if !outputEnded {
		var drained bool
		if copyErr, drained = receiveWithin(output, outputDrainTimeout); !drained {
			return Result{}, engineSilent(api, "end the build's output after its exit", outputDrainTimeout)
		}
	}
	restoreTerminal()

	if interrupted != nil {
		return Result{}, interrupted
	}
	if exit.err != nil {
		engineLost = true
		return Result{}, lostEngine(api, "waiting for the build", exit.err)
	}
	if exit.status.Error != nil && exit.status.Error.Message != "" {
		return Result{}, toolFailure("waiting for the build: %s", exit.status.Error.Message)
	}
	if copyErr != nil {
		return Result{}, copyErr
	}

	code := int(exit.status.StatusCode)
	if sp.check != nil && refusedByWorkdirCheck(code, head.bytes()) {
		// The check's own line said why; the build never ran.
		return Result{ExitCode: code}, nil
	}
	if cfg.Init {
		code = initExecFailure(lifecycle, api, id, code, head.bytes(), log)
	}
	if err := endedFromOutside(lifecycle, api, id, code); err != nil {
		engineLost = engineLost || isEngineStop(err)
		return Result{}, err
	}
	if code == 128+int(syscall.SIGKILL) {
		inspectCtx, cancel := detached(lifecycle, engineCallTimeout)
		reportOOM(inspectCtx, api, id, log)
		cancel()
	}
	// A failed build's line is a warning, so that a filter on the log's level
	// finds the failures.
	finished := log.Info()
	if code != 0 {
		finished = log.Warn()
	}
	finished.Int("exit_code", code).Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("build finished")
	// Artifacts are copied from the exited sibling, before it is removed,
	// whether the build passed or not; a missed one fails only a passed build.
	if err := copyArtifacts(lifecycle, api, id, sp.Config.WorkingDir, sp.artifacts, log); err != nil && code == 0 {
		return Result{}, err
	}
	return Result{ExitCode: code}, nil
}

// exitWatch turns the engine's two wait channels into one that is closed
// when the sibling has exited (or the wait failed), so that several parties
// can watch for the exit.
type exitWatch struct {
	done   chan struct{}
	status container.WaitResponse // valid once done is closed
	err    error                  // valid once done is closed
}

func watchExit(waitC <-chan container.WaitResponse, errC <-chan error) *exitWatch {
	w := &exitWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		select {
		case w.status = <-waitC:
		case w.err = <-errC:
		}
	}()
	return w
}

// reportOOM tells whether a build that died of SIGKILL was killed for lack of
// memory. Only such builds pay for the extra inspect.
func reportOOM(ctx context.Context, api *client.Client, id string, log zerolog.Logger) {
	info, err := api.ContainerInspect(ctx, id)
	if err != nil || info.State == nil {
		return
	}
	var limit int64
	if info.HostConfig != nil {
		limit = info.HostConfig.Memory
	}
	switch {
	case info.State.OOMKilled:
		log.Error().Msg(oomMessage(limit))
	case limit > 0 && isPodman(ctx, api):
		// Podman reports OOMKilled false for a build the kernel killed at
		// its --memory limit, so the kill itself is the only sign.
		log.Error().Msg(likelyOOMMessage(limit))
	}
}

// stopSignal is the signal to forward to the build for a run cancelled with
// cause: the one sibling-run received, or SIGTERM.
func stopSignal(cause error) syscall.Signal {
	var interrupt *InterruptError
	if errors.As(cause, &interrupt) {
		return interrupt.Signal
	}
	return syscall.SIGTERM
}

func describeCommand(cfg Config) string {
	if len(cfg.Command) == 0 {
		return "the image's command"
	}
	return fmt.Sprintf("%q", strings.Join(cfg.Command, " "))
}

// printSpec writes the spec that --dry-run shows, with secrets masked.
func printSpec(cfg Config, sp spec, secrets secretNames) error {
	shown := *sp.Config
	shown.Env = secrets.mask(sp.Config.Env)
	sp.Config = &shown
	enc := json.NewEncoder(cfg.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sp); err != nil {
		return toolFailure("printing the spec: %w", err)
	}
	return nil
}
