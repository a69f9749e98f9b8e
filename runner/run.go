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
func Run(ctx context.Context, api Engine, cfg Config) (_ Result, err error) {
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
	case err != nil && (len(sp.artifacts.artifacts) > 0 || sp.RunVolume != nil):
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
// starts the sibling only once orphansCleared is closed. Each step is a
// method of sibling, in the order it runs.
func runSibling(ctx context.Context, api Engine, cfg Config, sp spec, orphansCleared <-chan struct{}) (Result, error) {
	// Engine calls from here on must finish even when ctx is cancelled: a
	// create that completes after a SIGTERM still has to be removed.
	lifecycle := context.WithoutCancel(ctx)
	var lost *sibling // the sibling, once created: the volume's removal asks whether the engine was lost
	if v := sp.RunVolume; v != nil {
		if err := v.create(lifecycle, api); err != nil {
			return Result{}, err
		}
		defer func() {
			if cfg.Keep {
				cfg.Log.Info().Str("volume", v.Name).Msg("kept the working directory's volume with the sibling; remove it with docker volume rm after the sibling")
				return
			}
			v.remove(lifecycle, api, lost != nil && lost.engineLost, cfg.Log)
		}()
	}
	created, err := createSibling(ctx, lifecycle, api, cfg, sp)
	if err != nil {
		return Result{}, err
	}
	s := newSibling(lifecycle, api, cfg, sp, created)
	lost = s
	defer s.cleanUp()
	if ctx.Err() != nil {
		return Result{}, context.Cause(ctx)
	}
	if err := s.prepare(); err != nil {
		return Result{}, err
	}
	if err := s.copyIn(ctx); err != nil {
		return Result{}, err
	}
	att, exit, err := s.attachAndWatch()
	if err != nil {
		return Result{}, err
	}
	defer att.close()

	// Output that can no longer be passed on (sibling-run's stdout closed)
	// stops the build like a cancellation does; otherwise the build would
	// block on a full pipe forever.
	ctx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	head := &outputHead{} // to recognise an init that could not exec the command
	output := att.passOutput(head.tee(cfg.Stdout), head.tee(cfg.Stderr), cfg.TTY, abort)
	// A terminal's input is forwarded once it is raw (see start): before
	// that, its line discipline would turn a ^D into an end of input.
	if cfg.Interactive && !cfg.TTY {
		att.forwardInput(cfg.Stdin, false)
	}
	if err := awaitOrphans(ctx, orphansCleared); err != nil {
		return Result{}, err
	}
	defer func() { s.restoreTerminal() }() // start may set it
	started, err := s.start(att, output)
	if err != nil {
		return Result{}, err
	}
	ctx, cancelTimeout := withBuildTimeout(ctx, cfg.Timeout)
	defer cancelTimeout()
	if cfg.TTY {
		sizeCtx, stopSizing := context.WithCancel(lifecycle)
		defer stopSizing()
		followTerminalSize(sizeCtx, api, s.id, cfg.Stdout)
	}
	end, err := s.awaitEnd(ctx, exit, output)
	if err != nil {
		return Result{}, err
	}
	code, err := s.exitCode(end, head)
	if err != nil {
		return Result{}, err
	}
	return s.finish(end, code, head, started)
}

// awaitOrphans waits until orphansCleared is closed, or returns the cause
// of ctx's end: an orphan of a killed build of the same plan may still be
// writing into this working directory, and must be gone before the next
// build starts; a signal while clearing means the sibling never starts.
func awaitOrphans(ctx context.Context, orphansCleared <-chan struct{}) error {
	select {
	case <-orphansCleared:
	case <-ctx.Done():
	}
	return context.Cause(ctx)
}

// sibling is one created sibling and what the steps of its lifecycle share.
type sibling struct {
	api Engine
	id  string
	cfg Config
	sp  spec
	log zerolog.Logger
	// lifecycle is the context of engine calls that must finish even when
	// the run is cancelled; each has its own bound.
	lifecycle context.Context
	// buildMayHaveRun is set once the start was asked for: from then on,
	// the working directory is checked after the build on every way out.
	buildMayHaveRun bool
	// engineLost is set when the engine went away during the run: the
	// removal then gets one short try.
	engineLost bool
	// restoreTerminal restores a terminal made raw for the build; it may
	// be called more than once.
	restoreTerminal func()
	// sent is what the copy in sent to the run volume (remote only);
	// copiedBack is set once the copy back was tried.
	sent       sentTree
	copiedBack bool
}

func newSibling(lifecycle context.Context, api Engine, cfg Config, sp spec, created container.CreateResponse) *sibling {
	log := cfg.Log.With().Str("image", cfg.Image).Str("container", created.ID[:12]).Logger()
	for _, w := range created.Warnings {
		log.Warn().Msg(w)
	}
	return &sibling{api: api, id: created.ID, cfg: cfg, sp: sp, log: log, lifecycle: lifecycle, restoreTerminal: func() {}}
}

// cleanUp removes the sibling (or says that it is kept), then, once the
// build may have run, neutralises what it left in the working directory.
// It runs on every way out of runSibling after the create.
func (s *sibling) cleanUp() {
	if s.buildMayHaveRun && !s.copiedBack {
		if err := s.copyBack(); err != nil {
			s.log.Error().Msg(err.Error())
		}
	}
	if s.cfg.Keep {
		s.log.Info().Str("id", s.id).Msg("kept the sibling for inspection; remove it with docker rm -f")
	} else {
		removeSibling(s.lifecycle, s.api, s.id, s.engineLost, s.log)
	}
	if s.buildMayHaveRun {
		neutraliseWorkdir(s.sp.artifacts.root, s.cfg.KeepEscapingLinks, s.log)
	}
}

// prepare writes the build's passwd entry and, when the working directory
// is checked (see workdircheck.go), copies the check in. Both come before
// the attach: Podman prepares the container when it is attached to, and
// then sets HOME from the passwd it finds, or writes its own line with the
// working directory as HOME.
func (s *sibling) prepare() error {
	userCtx, cancelUser := detached(s.lifecycle, engineCallTimeout)
	ensurePasswdEntry(userCtx, s.api, s.id, s.sp.user, s.sp.caches.paths(), s.log)
	cancelUser()
	if s.sp.check == nil {
		return nil
	}
	ctx, cancel := detached(s.lifecycle, engineCallTimeout)
	defer cancel()
	return copyWorkdirCheck(ctx, s.api, s.id)
}

// copyIn fills the run volume with the working directory (remote only),
// before the build starts; a signal meanwhile ends it, and the run.
func (s *sibling) copyIn(ctx context.Context) error {
	if s.sp.RunVolume == nil {
		return nil
	}
	sent, err := copyWorkdirIn(ctx, s.api, s.id, s.sp.Config.WorkingDir, s.sp.artifacts.root, s.sp.user, s.log)
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if client.IsErrConnectionFailed(err) {
		s.engineLost = true
		return lostEngine(s.api, "copying the working directory in", err)
	}
	if err != nil {
		return toolFailure("%w", err)
	}
	s.sent = sent
	return nil
}

// copyBack brings the build's changes to the working directory back from
// the run volume (remote only), once: a build that failed keeps its exit
// code whatever happens here, a passed one fails with 125 (see finish).
func (s *sibling) copyBack() error {
	if s.sp.RunVolume == nil || s.copiedBack {
		return nil
	}
	s.copiedBack = true
	if s.engineLost {
		return fmt.Errorf("the build's changes to the working directory %s did not come back: the engine at %s was lost", s.sp.Config.WorkingDir, s.api.DaemonHost())
	}
	return copyWorkdirBack(s.lifecycle, s.api, s.id, s.sp.Config.WorkingDir, s.sp.artifacts.root, s.sent, s.log)
}

// attachAndWatch attaches to the sibling and registers the wait for its
// exit, both before the start, so that no output and no exit is missed.
func (s *sibling) attachAndWatch() (*attachment, *exitWatch, error) {
	att, err, answered := callWithin(engineCallTimeout, func() (*attachment, error) {
		return attach(s.lifecycle, s.api, s.id, s.cfg.Interactive)
	})
	if !answered {
		return nil, nil, engineSilent(s.api, "attach to the sibling", engineCallTimeout)
	}
	if client.IsErrConnectionFailed(err) {
		s.engineLost = true
		return nil, nil, lostEngine(s.api, "attaching to the sibling", err)
	}
	var cannotStart *cannotStartError
	if errors.As(err, &cannotStart) {
		return nil, nil, s.startFailure(err)
	}
	if err != nil {
		return nil, nil, toolFailure("attaching to the sibling for %s: %w", s.cfg.Image, err)
	}
	// The engine answers the wait's request at once and its body at the
	// exit; an engine that does not even answer must not hang the run.
	type exitChannels struct {
		status <-chan container.WaitResponse
		err    <-chan error
	}
	wait, _, answered := callWithin(engineCallTimeout, func() (exitChannels, error) {
		status, err := s.api.ContainerWait(s.lifecycle, s.id, container.WaitConditionNextExit)
		return exitChannels{status, err}, nil
	})
	if !answered {
		att.close()
		return nil, nil, engineSilent(s.api, "answer the wait for the build's exit", engineCallTimeout)
	}
	return att, watchExit(wait.status, wait.err), nil
}

// startFailure is the error of a build whose command the engine could not
// start: 127, 126 or 125, as docker run says.
func (s *sibling) startFailure(err error) error {
	return &ExitError{Code: startFailureCode(err), Err: fmt.Errorf("starting %s in %s: %w", describeCommand(s.cfg), s.cfg.Image, err)}
}

// start makes a terminal raw for the build and starts it, and returns
// when. The terminal is raw only while the build runs: it is restored as
// soon as the build has ended or is being stopped, so that each of
// sibling-run's own lines starts at the left margin.
func (s *sibling) start(att *attachment, output <-chan error) (time.Time, error) {
	s.log.Info().Str("workdir", s.sp.Config.WorkingDir).Msg("starting the build")
	if s.cfg.Interactive && s.cfg.TTY {
		restore, err := rawTerminal(s.cfg.Stdin)
		if err != nil {
			return time.Time{}, toolFailure("putting the terminal into raw mode: %w", err)
		}
		s.restoreTerminal = sync.OnceFunc(restore)
		att.forwardInput(s.cfg.Stdin, true)
	}
	// The build may already run, and print, when the engine dies before its
	// answer to the start arrives.
	s.buildMayHaveRun = true
	ctx, cancel := detached(s.lifecycle, startTimeout)
	err := s.api.ContainerStart(ctx, s.id, container.StartOptions{})
	silent := err != nil && ctx.Err() != nil
	cancel()
	switch {
	case silent:
		return time.Time{}, engineSilent(s.api, "start the build", startTimeout)
	case client.IsErrConnectionFailed(err):
		s.engineLost = true
		// What the build wrote before the engine died is passed on.
		_, _ = receiveWithin(output, engineTimeout)
		return time.Time{}, lostEngine(s.api, "starting the build", err)
	case err != nil:
		return time.Time{}, s.startFailure(err)
	}
	return time.Now(), nil
}

// buildEnd is how a build ended: its exit, or the wait's failure, as the
// engine reported it; how passing on its output ended; and the cause of
// its stop, when the run stopped it.
type buildEnd struct {
	exit        *exitWatch
	copyErr     error
	interrupted error
}

// awaitEnd waits for the build's exit and the end of its output, stopping
// the build when ctx ends first. It returns an error when the engine did
// not report the exit or end the output within their bounds.
func (s *sibling) awaitEnd(ctx context.Context, exit *exitWatch, output <-chan error) (buildEnd, error) {
	end := buildEnd{exit: exit}
	outputEnded := false
	// stop stops the build, unless it has ended already (see
	// stopUnlessEnded), and fails when the engine did not answer a kill
	// or did not report the exit even after the kill.
	stop := func() error {
		answered := stopUnlessEnded(context.Cause(ctx), exit.done, outputEnded, func(cause error) bool {
			end.interrupted = cause
			s.restoreTerminal()
			return stopSibling(s.lifecycle, s.api, s.id, stopSignal(cause), s.cfg.StopTimeout, exit.done, s.log)
		})
		if !answered {
			s.engineLost = true // the removal gets one short try
			return engineSilent(s.api, "answer the kill that stops the build", engineCallTimeout)
		}
		if !closedWithin(exit.done, exitAfterKillTimeout) {
			return engineSilent(s.api, "report the build's exit after it was killed", exitAfterKillTimeout)
		}
		return nil
	}
	select {
	case <-exit.done:
	case <-ctx.Done():
		if err := stop(); err != nil {
			return end, err
		}
	case end.copyErr = <-output:
		// The engine ends the output when the build exits; the exit's
		// report must follow.
		outputEnded = true
		select {
		case <-exit.done:
		case <-ctx.Done():
			if err := stop(); err != nil {
				return end, err
			}
		case <-time.After(exitAfterOutputTimeout):
			return end, engineSilent(s.api, "report the build's exit after its output ended", exitAfterOutputTimeout)
		}
	}
	// The engine ends the stream once the sibling has exited and all its
	// output is sent; reporting the exit before that would lose the last lines.
	if !outputEnded {
		var drained bool
		if end.copyErr, drained = receiveWithin(output, outputDrainTimeout); !drained {
			return end, engineSilent(s.api, "end the build's output after its exit", outputDrainTimeout)
		}
	}
	s.restoreTerminal()
	return end, nil
}

// exitCode is the build's exit code as docker run would report it, or the
// error that ended the run instead: the stop's cause, a lost engine, a
// failed wait or output.
func (s *sibling) exitCode(end buildEnd, head *outputHead) (int, error) {
	switch exit := end.exit; {
	case end.interrupted != nil:
		return 0, end.interrupted
	case exit.err != nil:
		s.engineLost = true
		return 0, lostEngine(s.api, "waiting for the build", exit.err)
	case exit.status.Error != nil && exit.status.Error.Message != "":
		return 0, toolFailure("waiting for the build: %s", exit.status.Error.Message)
	case end.copyErr != nil:
		return 0, end.copyErr
	}
	code := int(end.exit.status.StatusCode)
	if s.cfg.Init {
		code = initExecFailure(s.lifecycle, s.api, s.id, code, head.bytes(), s.log)
	}
	inspected := inspectAfterExit(s.lifecycle, s.api, s.id, code)
	if err := endedFromOutside(s.lifecycle, s.api, code, inspected); err != nil {
		s.engineLost = s.engineLost || isEngineStop(err)
		return 0, err
	}
	if code == 128+int(syscall.SIGKILL) {
		inspectCtx, cancel := detached(s.lifecycle, engineCallTimeout)
		reportOOM(inspectCtx, s.api, inspected, s.log)
		cancel()
	}
	return code, nil
}

// finish logs the build's end and copies its artifacts from the exited
// sibling, whether the build passed or not; a missed one fails only a
// passed build. A build that the working directory's check refused never
// ran: the check's own line said why, and its exit code is the result.
func (s *sibling) finish(end buildEnd, code int, head *outputHead, started time.Time) (Result, error) {
	if s.sp.check != nil && refusedByWorkdirCheck(int(end.exit.status.StatusCode), head.bytes()) {
		return Result{ExitCode: int(end.exit.status.StatusCode)}, nil
	}
	// A failed build's line is a warning, so that a filter on the log's level
	// finds the failures.
	finished := s.log.Info()
	if code != 0 {
		finished = s.log.Warn()
	}
	finished.Int("exit_code", code).Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("build finished")
	// The copy back comes first: an artifact written into the working
	// directory must not be overwritten by it.
	if err := s.copyBack(); err != nil {
		if code == 0 {
			return Result{}, toolFailure("%w", err)
		}
		s.log.Error().Msg(err.Error())
	}
	if err := copyArtifacts(s.lifecycle, s.api, s.id, s.sp.Config.WorkingDir, s.sp.artifacts, s.log); err != nil && code == 0 {
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
// memory, from the inspect made after its exit (inspectAfterExit).
func reportOOM(ctx context.Context, api Engine, inspected afterExit, log zerolog.Logger) {
	info, err := inspected.info, inspected.err
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
