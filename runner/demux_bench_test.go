package runner

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/pkg/stdcopy"
)

// socketReader hands out its bytes at most limit at a time, as a read from
// the engine's socket returns what the socket holds.
type socketReader struct {
	r     *bytes.Reader
	limit int
}

func (s *socketReader) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), s.limit)])
}

// benchStream is the engine's stream of size bytes of output in frames of
// frameSize, a tenth of them on stderr.
func benchStream(size, frameSize int) []byte {
	var stream bytes.Buffer
	payload := strings.Repeat("x", frameSize-1) + "\n"
	for i := 0; stream.Len() < size; i++ {
		stream.Write(frame(byte(1+boolInt(i%10 == 9)), payload))
	}
	return stream.Bytes()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// BenchmarkDemux compares demuxOutput with stdcopy.StdCopy on 16 MiB of a
// build's output, written to /dev/null (each write a system call, as to
// the agent's pipe): lines of 80 bytes, each its own frame (a build that
// writes line by line), and frames of 32 KiB (one that writes in bulk).
func BenchmarkDemux(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	copiers := []struct {
		name string
		copy func(stdout, stderr io.Writer, src io.Reader) error
	}{
		{"demuxOutput", demuxOutput},
		{"StdCopy", func(stdout, stderr io.Writer, src io.Reader) error {
			_, err := stdcopy.StdCopy(stdout, stderr, src)
			return err
		}},
	}
	for _, frames := range []struct {
		name string
		size int
	}{{"lines80B", 80}, {"frames16KiB", 16 << 10}, {"frames32KiB", 32 << 10}} {
		stream := benchStream(16<<20, frames.size)
		for _, c := range copiers {
			b.Run(frames.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(stream)))
				for b.Loop() {
					src := &socketReader{r: bytes.NewReader(stream), limit: 64 << 10}
					if err := c.copy(devNull, devNull, src); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
