package runner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/docker/docker/pkg/stdcopy"
)

// frame is one frame of the engine's multiplexed stream.
func frame(stream byte, payload string) []byte {
	f := make([]byte, frameHeaderSize, frameHeaderSize+len(payload))
	f[0] = stream
	binary.BigEndian.PutUint32(f[4:], uint32(len(payload)))
	return append(f, payload...)
}

// chunkReader returns its data in reads of at most size bytes.
type chunkReader struct {
	data []byte
	size int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.size)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// writeLog records which writer got which bytes, in order: NAME:BYTES for
// each run of writes to one writer, and the number of writes.
type writeLog struct {
	got            strings.Builder
	last           string
	count          int
	stdout, stderr logWriter
}

type logWriter struct {
	log  *writeLog
	name string
}

func newWriteLog() *writeLog {
	l := &writeLog{}
	l.stdout, l.stderr = logWriter{l, "out"}, logWriter{l, "err"}
	return l
}

func (w logWriter) Write(p []byte) (int, error) {
	if w.log.last != w.name {
		w.log.got.WriteString(w.name + ":")
		w.log.last = w.name
	}
	w.log.got.Write(p)
	w.log.count++
	return len(p), nil
}

func TestDemuxOutput(t *testing.T) {
	big := strings.Repeat("x", demuxBufferSize+100)
	for _, tc := range []struct {
		name       string
		stream     [][]byte
		wantOut    string
		wantErr    string
		wantWrites int // at most, with the stream in one read
	}{
		{"stdout and stderr", [][]byte{frame(1, "a\n"), frame(2, "b\n"), frame(1, "c\n")}, "out:a\nerr:b\nout:c\n", "", 3},
		{"consecutive frames of one stream go out together", [][]byte{frame(1, "a"), frame(1, "b"), frame(1, "c"), frame(2, "d"), frame(2, "e")}, "out:abcerr:de", "", 2},
		{"stdin frames go to stdout", [][]byte{frame(0, "old"), frame(1, "new")}, "out:oldnew", "", 1},
		{"empty frames", [][]byte{frame(1, ""), frame(2, ""), frame(1, "a")}, "out:a", "", 1},
		{"a frame larger than the buffer", [][]byte{frame(1, big), frame(2, "z")}, "out:" + big + "err:z", "", 3},
		{"the engine's error ends the copy", [][]byte{frame(1, "a"), frame(3, "disk full"), frame(1, "never")}, "out:a", "error from daemon in stream: disk full", 1},
		{"an unknown stream is an error", [][]byte{frame(1, "a"), frame(7, "?")}, "out:a", "unknown stream 7", 1},
		{"a stream cut inside a header ends quietly", [][]byte{frame(1, "a"), {1, 0, 0}}, "out:a", "", 1},
		{"a stream cut inside a payload passes on what came", [][]byte{frame(1, "abc")[:frameHeaderSize+2]}, "out:ab", "", 1},
	} {
		data := bytes.Join(tc.stream, nil)
		for _, read := range []struct {
			name string
			r    func() io.Reader
		}{
			{"one read", func() io.Reader { return &chunkReader{data: data, size: len(data) + 1} }},
			{"byte by byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) }},
			{"in 5-byte reads", func() io.Reader { return &chunkReader{data: data, size: 5} }},
			{"data with EOF", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) }},
		} {
			t.Run(tc.name+"/"+read.name, func(t *testing.T) {
				log := newWriteLog()
				err := demuxOutput(log.stdout, log.stderr, read.r())
				if got := log.got.String(); got != tc.wantOut {
					t.Errorf("got output %.80q, want %.80q", got, tc.wantOut)
				}
				if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("got error %v, want one with %q", err, tc.wantErr)
				}
				if read.name == "one read" && log.count > tc.wantWrites {
					t.Errorf("got %d writes, want at most %d", log.count, tc.wantWrites)
				}
			})
		}
	}
}

func TestDemuxOutputPassesOnReadAndWriteErrors(t *testing.T) {
	lost := errors.New("connection reset")
	src := io.MultiReader(bytes.NewReader(frame(1, "a")), iotest.ErrReader(lost))
	var out bytes.Buffer
	if err := demuxOutput(&out, io.Discard, src); !errors.Is(err, lost) || out.String() != "a" {
		t.Errorf("got %v and %q, want %v after a", err, out.String(), lost)
	}
	closed := errors.New("stdout closed")
	err := demuxOutput(failingWriter{closed}, io.Discard, bytes.NewReader(frame(1, "a")))
	if !errors.Is(err, closed) {
		t.Errorf("got %v, want %v", err, closed)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// FuzzDemuxOutput checks demuxOutput against the docker client's own
// stdcopy.StdCopy on streams that stdcopy's writer makes, read in chunks of
// any size: both must pass on the same bytes to the same streams.
func FuzzDemuxOutput(f *testing.F) {
	f.Add([]byte("\x01hello\x02world\x01!"), uint16(7))
	f.Add([]byte("\x02only stderr"), uint16(1))
	f.Fuzz(func(t *testing.T, script []byte, chunk uint16) {
		// script: a stream byte (1 or 2) starts a write of the bytes after it.
		var stream bytes.Buffer
		stdoutW, stderrW := stdcopy.NewStdWriter(&stream, stdcopy.Stdout), stdcopy.NewStdWriter(&stream, stdcopy.Stderr)
		for len(script) > 0 {
			w := stdoutW
			if script[0]%2 == 0 {
				w = stderrW
			}
			end := bytes.IndexAny(script[1:], "\x01\x02")
			if end < 0 {
				end = len(script) - 1
			}
			_, _ = w.Write(script[1 : 1+end])
			script = script[1+end:]
		}
		var wantOut, wantErr, gotOut, gotErr bytes.Buffer
		if _, err := stdcopy.StdCopy(&wantOut, &wantErr, bytes.NewReader(stream.Bytes())); err != nil {
			t.Fatalf("StdCopy: %v", err)
		}
		src := &chunkReader{data: stream.Bytes(), size: int(chunk)%70000 + 1}
		if err := demuxOutput(&gotOut, &gotErr, src); err != nil {
			t.Fatalf("demuxOutput: %v", err)
		}
		if !bytes.Equal(gotOut.Bytes(), wantOut.Bytes()) || !bytes.Equal(gotErr.Bytes(), wantErr.Bytes()) {
			t.Errorf("got stdout %q stderr %q, want %q and %q", gotOut.Bytes(), gotErr.Bytes(), wantOut.Bytes(), wantErr.Bytes())
		}
	})
}
