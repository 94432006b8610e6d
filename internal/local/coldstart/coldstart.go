// Package coldstart measures how long a function's bootstrap takes to
// initialise: from the moment its process is started to its first request
// for an invocation (GET /2018-06-01/runtime/invocation/next), against a
// tiny Lambda Runtime API on loopback. That span is what a cold start adds
// before the handler runs, less the download and sandbox set-up that
// Lambda does and no local run can reproduce.
//
// A figure alone says little on a shared machine, so each function is
// measured against a floor bootstrap (./floor: hello-world handler, the
// SDK's default config, one DynamoDB client) started alternately with it
// in the same rounds, and the ratio is what `make bench` reports.
package coldstart

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"sync"
	"time"
)

// Runtime API paths, version 2018-06-01:
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
const (
	nextPath      = "/2018-06-01/runtime/invocation/next"
	initErrorPath = "/2018-06-01/runtime/init/error"
)

// Timeout bounds one start: a bootstrap that has not asked for an
// invocation by then has failed, whatever the machine's load.
const Timeout = 10 * time.Second

// Start runs the bootstrap at path with exactly env (nothing of this
// process's environment: Lambda gives a function only its own variables)
// plus AWS_LAMBDA_RUNTIME_API, the address of a Runtime API that lives for
// this one start. It returns the time from just before the process is
// started to the arrival of its first GET …/invocation/next, and what the
// process wrote to stderr by then, then stops the process. A process that
// exits, reports an init error or asks for anything else first fails the
// start, with its stderr.
func Start(ctx context.Context, path string, env map[string]string) (time.Duration, []byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, nil, err
	}
	api := &runtimeAPI{next: make(chan time.Time, 1), failed: make(chan string, 1)}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: Timeout}
	go srv.Serve(ln)
	defer srv.Close()

	list := make([]string, 0, len(env)+1)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k != "AWS_LAMBDA_RUNTIME_API" {
			list = append(list, k+"="+env[k])
		}
	}
	list = append(list, "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())

	var stderr syncBuffer
	cmd := exec.Command(path)
	cmd.Env = list
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	timer := time.NewTimer(Timeout)
	defer timer.Stop()

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	select {
	case at := <-api.next:
		stop()
		return at.Sub(start), stderr.Bytes(), nil
	case msg := <-api.failed:
		stop()
		return 0, stderr.Bytes(), fmt.Errorf("%s: %s\n%s", path, msg, stderr.Bytes())
	case err := <-exited:
		return 0, stderr.Bytes(), fmt.Errorf("%s exited before asking for an invocation (%v)\n%s", path, err, stderr.Bytes())
	case <-timer.C:
		stop()
		return 0, stderr.Bytes(), fmt.Errorf("%s asked for no invocation within %s\n%s", path, Timeout, stderr.Bytes())
	case <-ctx.Done():
		stop()
		return 0, stderr.Bytes(), ctx.Err()
	}
}

// runtimeAPI answers what a bootstrap sends before its first invocation:
// GET …/invocation/next is recorded and held open (the process is stopped
// before any event would be due); POST …/init/error fails the start as it
// fails a Lambda init; anything else is a 404 that fails it too.
type runtimeAPI struct {
	next   chan time.Time
	failed chan string
}

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == nextPath:
		select {
		case a.next <- time.Now():
		default:
		}
		<-r.Context().Done()
	case r.Method == http.MethodPost && r.URL.Path == initErrorPath:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		a.fail(fmt.Sprintf("init error (%s): %s", r.Header.Get("Lambda-Runtime-Function-Error-Type"), body))
		w.WriteHeader(http.StatusAccepted)
	default:
		a.fail(fmt.Sprintf("unexpected request %s %s before the first invocation", r.Method, r.URL.Path))
		http.NotFound(w, r)
	}
}

func (a *runtimeAPI) fail(msg string) {
	select {
	case a.failed <- msg:
	default:
	}
}

// syncBuffer is a bytes.Buffer that exec's copying goroutine may write
// while Start reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// Bootstrap is a built bootstrap and the environment it starts with.
type Bootstrap struct {
	Name string
	Path string
	Env  map[string]string
}

// Comparison is the outcome of Compare for one function.
type Comparison struct {
	Name string
	// Init holds the function's start-to-/next times, one per round;
	// Floor the floor's of the same rounds.
	Init, Floor []time.Duration
}

// Ratio is the median over rounds of function time / floor time in the
// same round: a round's two starts share the machine's load of the moment.
func (c Comparison) Ratio() float64 {
	r := make([]float64, len(c.Init))
	for i := range c.Init {
		r[i] = float64(c.Init[i]) / float64(c.Floor[i])
	}
	return Median(r)
}

// Compare starts floor and every function once per round, in an order
// that rotates from round to round so no bootstrap always goes first,
// after warmup rounds that are not counted (they page the binaries in).
func Compare(ctx context.Context, floor Bootstrap, functions []Bootstrap, rounds, warmup int) ([]Comparison, error) {
	if rounds < 1 {
		return nil, errors.New("compare: at least one round")
	}
	all := append([]Bootstrap{floor}, functions...)
	times := make([][]time.Duration, len(all))
	for round := -warmup; round < rounds; round++ {
		for k := range all {
			i := (k + max(round, 0)) % len(all)
			d, _, err := Start(ctx, all[i].Path, all[i].Env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", all[i].Name, err)
			}
			if round >= 0 {
				times[i] = append(times[i], d)
			}
		}
	}
	out := make([]Comparison, len(functions))
	for i, fn := range functions {
		out[i] = Comparison{Name: fn.Name, Init: times[i+1], Floor: times[0]}
	}
	return out, nil
}

// Median is the middle value of xs (the mean of the two middle values for
// an even count); zero for none. xs is not changed.
func Median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
