package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-units"
	"github.com/rs/zerolog"
)

// showPull reads the engine's pull stream to its end and reports the pull:
// live, one line per layer redrawn in place, when terminal is not nil; else
// as a few log lines (each layer as it is done, then the total), which read
// well in a CI log that keeps every byte. It returns the error the stream
// ends with, if any.
func showPull(body io.Reader, terminal fileWriter, log zerolog.Logger) error {
	tally := newPullTally()
	if terminal == nil {
		err := decodePull(body, func(msg jsonmessage.JSONMessage) { tally.observe(msg, log) })
		if err == nil {
			tally.summarize(log)
		}
		return err
	}

	// The display draws from a copy of the stream while the tally reads it.
	pr, pw := io.Pipe()
	displayed := make(chan struct{})
	go func() {
		defer close(displayed)
		_ = jsonmessage.DisplayJSONMessagesStream(pr, terminal, terminal.Fd(), true, nil)
		_, _ = io.Copy(io.Discard, pr) // it stops at an error message; let the tally finish
	}()
	err := decodePull(io.TeeReader(body, pw), func(msg jsonmessage.JSONMessage) { tally.observe(msg, zerolog.Nop()) })
	pw.Close()
	<-displayed
	if err == nil {
		tally.summarize(log)
	}
	return err
}

// decodePull calls observe for each message of a pull stream and returns the
// error that a message reports, or the one that broke the stream.
func decodePull(body io.Reader, observe func(jsonmessage.JSONMessage)) error {
	dec := json.NewDecoder(body)
	for {
		var msg jsonmessage.JSONMessage
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the engine's pull progress: %w", err)
		}
		if msg.Error != nil {
			return msg.Error
		}
		observe(msg)
	}
}

// pullTally keeps what the log lines of a pull report.
type pullTally struct {
	started  time.Time
	sizes    map[string]int64 // layer → bytes to download
	fetched  int64            // bytes of the layers pulled so far
	layers   int              // layers pulled (not already on the engine)
	present  int              // layers already on the engine
	upToDate bool
}

func newPullTally() *pullTally {
	return &pullTally{started: time.Now(), sizes: map[string]int64{}}
}

// observe takes one message of the stream and logs a layer that is done.
func (t *pullTally) observe(msg jsonmessage.JSONMessage, log zerolog.Logger) {
	switch {
	case msg.Status == "Downloading" && msg.Progress != nil && msg.Progress.Total > 0:
		t.sizes[msg.ID] = msg.Progress.Total
	case msg.Status == "Pull complete":
		size := t.sizes[msg.ID]
		t.fetched += size
		t.layers++
		log.Info().Str("layer", msg.ID).Str("size", units.HumanSize(float64(size))).Msg("layer pulled")
	case msg.Status == "Already exists":
		t.present++
		log.Debug().Str("layer", msg.ID).Msg("layer already on the engine") // counted in the closing line
	case strings.HasPrefix(msg.Status, "Status: Image is up to date"):
		t.upToDate = true
	}
}

// summarize logs the pull's one closing line.
func (t *pullTally) summarize(log zerolog.Logger) {
	took := time.Since(t.started).Round(time.Millisecond)
	if t.upToDate {
		log.Info().Stringer("took", took).Msg("the image is up to date")
		return
	}
	log.Info().Str("size", units.HumanSize(float64(t.fetched))).Int("layers", t.layers).
		Int("layers_present", t.present).Stringer("took", took).Msg("pulled the image")
}
