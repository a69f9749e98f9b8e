//go:build !linux

package main

import (
	"errors"
	"syscall"
)

func setParentDeathSignal(syscall.Signal) error {
	return errors.New("only Linux has a parent-death signal")
}
