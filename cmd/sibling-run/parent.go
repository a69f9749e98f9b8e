package main

import (
	"os"
	"os/signal"
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

// parentDeathSignal is what the kernel sends when the thread that started
// sibling-run ends. Not SIGTERM: that thread's end is not always the
// parent's. A multithreaded parent (a JVM's worker thread) may end the thread
// and live on, and under docker exec the parent is the runtime outside the
// container's pid namespace (getppid is 0), which ends as soon as the command
// runs. So the signal only asks whether the parent process is gone.
const parentDeathSignal = syscall.SIGUSR1

// stopWithParent makes the death of sibling-run's parent (a task's shell that
// the agent stopped or killed) stop the run like SIGTERM, with gone called:
// the build is stopped, removed, and sibling-run exits 143. It reports false
// when the parent is gone already, so that the build never starts. Where the
// kernel cannot signal the parent's death, a poll of the parent's pid does
// the same. A parent outside this pid namespace cannot be watched.
func stopWithParent(gone func(), log zerolog.Logger) bool {
	deaths := make(chan os.Signal, 1)
	signal.Notify(deaths, parentDeathSignal) // before the prctl: the signal's default is to end us
	if err := setParentDeathSignal(parentDeathSignal); err != nil {
		signal.Stop(deaths)
		log.Debug().Err(err).Msg("no parent-death signal; polling the parent instead")
		go func() {
			for range time.Tick(parentPollInterval) {
				if parentGone() {
					gone()
					return
				}
			}
		}()
	} else {
		go func() {
			for range deaths {
				if parentGone() {
					gone()
					return
				}
				log.Debug().Int("parent_pid", startPPID).Msg("the thread that started sibling-run ended, but its process is still there; going on")
			}
		}()
	}
	// The parent may have died between our start and the prctl: then no
	// signal comes.
	return !parentGone()
}

// parentGone reports whether the parent that started sibling-run has died.
func parentGone() bool { return os.Getppid() != startPPID }
