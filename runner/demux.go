package runner

import (
	"encoding/binary"
	"fmt"
	"io"
)

// demuxBufferSize is how much of the engine's stream one read may take. A
// read returns what the socket holds, so a larger buffer only helps when the
// build writes faster than sibling-run passes its output on, and then it
// takes several of the engine's frames (32 KiB each) at once.
const demuxBufferSize = 256 << 10

// The engine's multiplexed stream: each frame is an 8-byte header (stream
// number, three zero bytes, the payload's length big-endian) and the payload.
const (
	frameHeaderSize = 8
	streamStdin     = 0 // sent as stdout by old engines
	streamStdout    = 1
	streamStderr    = 2
	streamSystemErr = 3 // the engine's own error, ending the stream
)

// demuxOutput copies the engine's multiplexed stream src to stdout and
// stderr until src ends, as stdcopy.StdCopy does, with fewer system calls:
// it reads as much as the socket holds, and writes the payloads of
// consecutive frames of one stream with one write. Everything it has read is
// written before it reads again, so no output waits for more to arrive.
// A stream that ends inside a frame ends the copy quietly, as with StdCopy;
// an error frame from the engine is returned as an error.
func demuxOutput(stdout, stderr io.Writer, src io.Reader) error {
	d := demuxer{stdout: stdout, stderr: stderr, buf: make([]byte, demuxBufferSize)}
	for {
		n, err := src.Read(d.buf[d.end:])
		d.end += n
		if werr := d.passOn(); werr != nil {
			return werr
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type demuxer struct {
	stdout, stderr io.Writer
	buf            []byte
	end            int       // buf[:end] holds bytes read and not yet passed on
	frameLeft      int       // payload bytes of the current frame still to come
	stream         byte      // the current frame's stream
	out            io.Writer // where the current frame's payload goes
	pending        int       // buf[:pending] is payload for out, not yet written
	systemErr      []byte    // the payload of an error frame
}

// passOn writes out every payload byte in buf[:end], moving the payloads
// down over the headers between them so that consecutive frames of one
// stream go out in one write, and keeps only an incomplete header.
func (d *demuxer) passOn() error {
	start := 0
	for start < d.end {
		if d.frameLeft == 0 {
			if d.end-start < frameHeaderSize {
				break
			}
			header := d.buf[start : start+frameHeaderSize]
			start += frameHeaderSize
			if err := d.beginFrame(header[0], int(binary.BigEndian.Uint32(header[4:]))); err != nil {
				return err
			}
			continue
		}
		take := min(d.frameLeft, d.end-start)
		if d.stream == streamSystemErr {
			d.systemErr = append(d.systemErr, d.buf[start:start+take]...)
		} else {
			d.pending += copy(d.buf[d.pending:], d.buf[start:start+take])
		}
		start += take
		d.frameLeft -= take
		if d.stream == streamSystemErr && d.frameLeft == 0 {
			return fmt.Errorf("error from daemon in stream: %s", d.systemErr)
		}
	}
	if err := d.flush(); err != nil {
		return err
	}
	d.end = copy(d.buf, d.buf[start:d.end])
	return nil
}

// beginFrame starts a frame of size payload bytes on stream, writing out
// what another stream's frames left pending.
func (d *demuxer) beginFrame(stream byte, size int) error {
	d.frameLeft = size
	if stream == streamStdin {
		stream = streamStdout
	}
	if stream != d.stream || d.out == nil {
		if err := d.flush(); err != nil {
			return err
		}
		switch stream {
		case streamStdout:
			d.out = d.stdout
		case streamStderr:
			d.out = d.stderr
		case streamSystemErr:
			d.out = nil
		default:
			return fmt.Errorf("unknown stream %d in the engine's output", stream)
		}
		d.stream = stream
	}
	if stream == streamSystemErr && size == 0 {
		return fmt.Errorf("error from daemon in stream: %s", d.systemErr)
	}
	return nil
}

func (d *demuxer) flush() error {
	if d.pending == 0 {
		return nil
	}
	n, err := d.out.Write(d.buf[:d.pending])
	if err == nil && n != d.pending {
		err = io.ErrShortWrite
	}
	d.pending = 0
	return err
}
