package main

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// devProcess is `flagline dev` run as a user runs it, in a process group
// of its own so that a test can press Ctrl-C on the whole group.
type devProcess struct {
	cmd     *exec.Cmd
	stdout  io.Reader
	stderr  *strings.Builder
	pgid    int
	stopped bool // Wait has returned
}

// devGrouping: these tests watch a report's first alert reach the inbox,
// so the desks hold nothing back (GroupWait 0s): the copy still goes
// through the digest queue, flushed as soon as it is held.
var devGrouping = []string{"--param", "GroupWait=0s"}

// startDev builds the CLI and starts `flagline dev --addr addr` from the
// repository root with env added; the group is killed at the end of the
// test unless the test saw it stop.
func startDev(t *testing.T, addr string, env ...string) *devProcess {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flagline")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	d := &devProcess{cmd: exec.Command(bin, append([]string{"dev", "--addr", addr}, devGrouping...)...), stderr: &strings.Builder{}}
	d.cmd.Dir = filepath.Join("..", "..")
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	d.cmd.Stderr = d.stderr
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.stdout = stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.pgid = d.cmd.Process.Pid
	t.Cleanup(func() {
		if !d.stopped {
			syscall.Kill(-d.pgid, syscall.SIGKILL)
			d.cmd.Wait()
		}
	})
	return d
}

// bin is the path of the CLI binary the process runs.
func (d *devProcess) bin() string { return d.cmd.Path }

// interrupt presses Ctrl-C on the whole group, as a terminal does, and
// waits up to within for the process to exit; it fails the test if the
// process outlives that, and returns how it exited.
func (d *devProcess) interrupt(t *testing.T, within time.Duration) error {
	t.Helper()
	syscall.Kill(-d.pgid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		d.stopped = true
		return err
	case <-time.After(within):
		t.Fatalf("flagline dev did not stop within %s of Ctrl-C", within)
		return nil
	}
}
