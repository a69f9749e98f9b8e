package main

import (
	"io"
	"os"

	"github.com/rs/zerolog"
	"golang.org/x/term"
)

// newLogger returns the logger for sibling-run's own messages: on stderr,
// beside the build's output, so each line says it is sibling-run's. Console
// lines carry no time stamp: Bamboo's task log stamps every line itself.
func newLogger(level, format string, out io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	if format == "json" {
		return zerolog.New(out).Level(lvl).With().Timestamp().Str("logger", "sibling-run").Logger()
	}
	console := zerolog.ConsoleWriter{
		Out:         out,
		NoColor:     !term.IsTerminal(int(os.Stderr.Fd())),
		PartsOrder:  []string{zerolog.LevelFieldName, zerolog.MessageFieldName},
		FormatLevel: func(i any) string { return "[sibling-run] " + levelTag(i) },
	}
	return zerolog.New(console).Level(lvl)
}

func levelTag(i any) string {
	switch i {
	case "debug":
		return "DBG"
	case "info":
		return "INF"
	case "warn":
		return "WRN"
	case "error":
		return "ERR"
	}
	return "???"
}
