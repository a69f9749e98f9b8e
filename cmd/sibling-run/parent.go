package main

import (
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// startPPID is sibling-run's parent as early as Go lets us look: when it
// differs later, the parent has died (we were re-parented to init or a
// subreaper).
var startPPID = os.Getppid()

// The parent-death signal belongs to the thread that asks for it, and the
// main thread lives as long as the process: locking the main goroutine to it
// during init keeps main, and so the prctl in stopWithParent, on it.
func init() { runtime.LockOSThread() }

// parentPollInterval is how often the fallback checks the parent, where the
// kernel cannot signal its death: often enough that a stopped task's build
// stops within about a second, rarely enough to cost nothing.
const parentPollInterval = time.Second

// stopWithParent makes the death of sibling-run's parent (a task's shell that
// the agent stopped or killed) stop the run like SIGTERM: the kernel sends
// SIGTERM, which the caller's handler already turns into a stopped build and
// exit 143. It reports false when the parent is gone already, so that the
// build never starts. Where the kernel cannot send the signal, a poll of the
// parent's pid does the same, with gone called instead.
func stopWithParent(gone func(), log zerolog.Logger) bool {
	if err := setParentDeathSignal(syscall.SIGTERM); err != nil {
		log.Debug().Err(err).Msg("no parent-death signal; polling the parent instead")
		go func() {
			for range time.Tick(parentPollInterval) {
				if parentGone() {
					gone()
					return
				}
			}
		}()
	}
	// The parent may have died between our start and the prctl: then no
	// signal comes.
	return !parentGone()
}

// parentGone reports whether the parent that started sibling-run has died.
func parentGone() bool { return os.Getppid() != startPPID }
