package runtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/flagline/flagline/internal/local/tailbuf"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InvokePath is the emulator's invoke endpoint, the Lambda Invoke API's path
// with the function name fixed to "function".
const InvokePath = "/2015-03-31/functions/function/invocations"

// Emulator is a function's bootstrap running under the AWS Lambda Runtime
// Interface Emulator, as `sam local invoke` runs it inside its container:
// the emulator serves the Runtime API to the bootstrap and the Invoke API to
// the test.
type Emulator struct {
	// Name is the function's AWS_LAMBDA_FUNCTION_NAME.
	Name string
	// URL is the invoke endpoint.
	URL string

	// mu serialises invokes: one emulator handles one at a time.
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	out      *tailbuf.Buffer
	client   *http.Client
	stopOnce sync.Once
}

// Start runs bootstrap under the emulator with exactly env as the process
// environment (see StartEmulator) and stops it, with everything it started,
// when t ends; if t failed, the emulator's output is logged.
func Start(t testing.TB, bootstrap string, env map[string]string) *Emulator {
	t.Helper()
	e, err := StartEmulator(bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("%s: emulator and function output (last %d KiB):\n%s", e.Name, tailBytes>>10, e.Output())
		}
	})
	return e
}

// StartEmulator runs aws-lambda-rie with bootstrap on two free loopback
// ports (--runtime-interface-emulator-address for invokes,
// --runtime-api-address for the bootstrap) and waits until it accepts
// connections. The function initialises at the first invoke, as on Lambda.
//
// The process environment is env and nothing of the caller's, plus, where
// env does not set them: PATH and TZ as Lambda sets them, HOME,
// LAMBDA_TASK_ROOT and _HANDLER, and AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE (both /dev/null) and AWS_EC2_METADATA_DISABLED,
// so that no AWS configuration of the developer's reaches the function. The
// emulator passes its whole environment on to the bootstrap.
func StartEmulator(bootstrap string, env map[string]string) (*Emulator, error) {
	if _, ok := env["AWS_LAMBDA_MAX_CONCURRENCY"]; ok {
		return nil, errors.New("AWS_LAMBDA_MAX_CONCURRENCY switches aws-lambda-rie to Lambda Managed Instances mode; do not set it")
	}
	rie, err := EmulatorBinary()
	if err != nil {
		return nil, err
	}
	bootstrap, err = filepath.Abs(bootstrap)
	if err != nil {
		return nil, err
	}
	taskRoot := filepath.Dir(bootstrap)
	full := map[string]string{
		"PATH":                        "/usr/local/bin:/usr/bin:/bin",
		"TZ":                          ":UTC",
		"HOME":                        taskRoot,
		"LAMBDA_TASK_ROOT":            taskRoot,
		"_HANDLER":                    filepath.Base(bootstrap),
		"AWS_LAMBDA_FUNCTION_NAME":    "function",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	maps.Copy(full, env)
	var errs []error
	// A free port can be taken between choosing and binding it: try again.
	for range 3 {
		e, err := startOnce(rie, bootstrap, full)
		if err == nil {
			return e, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startOnce(rie, bootstrap string, env map[string]string) (*Emulator, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	invokeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	runtimeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		"--log-level", "warn",
		bootstrap)
	// The emulator runs the bootstrap in its working directory.
	cmd.Dir = filepath.Dir(bootstrap)
	for _, k := range slices.Sorted(maps.Keys(env)) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	e := &Emulator{
		Name:   env["AWS_LAMBDA_FUNCTION_NAME"],
		URL:    "http://" + invokeAddr + InvokePath,
		cmd:    cmd,
		done:   make(chan struct{}),
		out:    tailbuf.New(tailBytes),
		client: &http.Client{},
	}
	cmd.Stdout, cmd.Stderr = e.out, e.out
	// Its own process group, so that Stop reaches the bootstrap too; and
	// killed if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Output is copied through a pipe the bootstrap also holds: do not wait
	// for it for ever.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start aws-lambda-rie: %w", err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()
	if err := e.waitReady(invokeAddr, 15*time.Second); err != nil {
		e.Stop()
		return nil, fmt.Errorf("%s: %w\n%s", e.Name, err, e.out.Last(errorTail))
	}
	return e, nil
}

func (e *Emulator) waitReady(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-e.done:
			return fmt.Errorf("aws-lambda-rie exited before it was ready: %v", e.waitErr)
		default:
		}
		// A plain connection: any HTTP request to the emulator is an invoke.
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("aws-lambda-rie did not listen on %s within %s", addr, limit)
}

// Invoke sends one invocation with payload and returns the function's
// response. A function error (the runtime reported an error, the handler
// returned one or panicked, or the invocation timed out) is not an error of
// Invoke: it comes back as functionError (the errorType the runtime
// reported, "Sandbox.Timedout" for a timeout) with the error document as
// response, much as Lambda answers with X-Amz-Function-Error. The emulator
// drops that header, so the error document is recognised by its shape.
// err is for everything else: the emulator could not be reached, it exited,
// or it answered other than 200 (e.g. 502 when the bootstrap failed to
// start). Invokes are serialised.
func (e *Emulator) Invoke(ctx context.Context, payload []byte) (response []byte, functionError string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.done:
		return nil, "", fmt.Errorf("%s: aws-lambda-rie has exited: %v\n%s", e.Name, e.waitErr, e.out.Last(errorTail))
	default:
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(payload))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("%s: invoke: %w", e.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", fmt.Errorf("%s: read the response: %w", e.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The emulator can answer before the bootstrap's last output
		// (its start-up error, say) has come through the pipe: give it a
		// moment to settle, so the error quotes it.
		return body, "", fmt.Errorf("%s: the emulator answered %s: %q\n%s", e.Name, resp.Status, body, e.settledOutput())
	}
	return body, errorType(body), nil
}

// errorType is the errorType of an error document
// ({"errorMessage": …, "errorType": …}, as the runtime posts to
// /runtime/invocation/<id>/error), "Sandbox.Timedout" for the emulator's
// timeout answer, or "".
func errorType(body []byte) string {
	if bytes.HasPrefix(body, []byte("Task timed out after ")) {
		return "Sandbox.Timedout"
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	_, hasType := doc["errorType"]
	_, hasMessage := doc["errorMessage"]
	if !hasType && !hasMessage {
		return ""
	}
	for k := range doc {
		switch k {
		case "errorType", "errorMessage", "stackTrace", "requestId", "cause":
		default:
			return "" // a response that merely has such a field
		}
	}
	var typ string
	if json.Unmarshal(doc["errorType"], &typ) != nil || typ == "" {
		return "Unhandled"
	}
	return typ
}

// Output is the tail of what the emulator and the function wrote.
func (e *Emulator) Output() string { return e.out.String() }

// Stop ends the emulator and the bootstrap and waits for the emulator to
// exit. It is safe to call more than once.
//
// The emulator starts the bootstrap in a process group of its own, so
// signalling the emulator's group does not reach it: the emulator, told
// SIGTERM, kills its runtime itself, and whatever it started that is still
// there afterwards is killed by its group.
func (e *Emulator) Stop() {
	e.stopOnce.Do(func() {
		pid := e.cmd.Process.Pid
		started := children(pid)
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-e.done
		}
		for _, c := range started {
			_ = syscall.Kill(-c, syscall.SIGKILL)
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	})
}

// processes are the emulator's pid and those of the processes it started.
func (e *Emulator) processes() []int {
	pid := e.cmd.Process.Pid
	return append([]int{pid}, children(pid)...)
}

// children lists the live processes whose parent is pid, from /proc (none
// where there is no /proc).
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		state, ppid, ok := procStat(p)
		if ok && ppid == pid && state != "Z" {
			if c, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// procStat reads the state and parent pid from /proc/<pid>/stat:
// "pid (comm) state ppid …", where comm may hold spaces and parentheses.
func procStat(path string) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return f[0], ppid, err == nil
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	state, _, ok := procStat(fmt.Sprintf("/proc/%d/stat", pid))
	return ok && state != "Z"
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailBytes is how much output an Emulator keeps; errorTail how much of
// it an error quotes.
const (
	tailBytes = 256 << 10
	errorTail = 4 << 10
)

// settledOutput is the emulator's last output once it has not grown for
// 100 ms (at most 2 s).
func (e *Emulator) settledOutput() string {
	last := e.out.Last(errorTail)
	stable := time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && time.Since(stable) < 100*time.Millisecond; {
		time.Sleep(20 * time.Millisecond)
		if now := e.out.Last(errorTail); now != last {
			last, stable = now, time.Now()
		}
	}
	return last
}
