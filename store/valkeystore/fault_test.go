//go:build unix

package valkeystore_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/valkeystore"
)

// server is a redis-server process a test starts, breaks and restarts on
// its own loopback port.
type server struct {
	t    *testing.T
	bin  string
	port int
	dir  string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

// serverBinary finds redis-server (or valkey-server), skipping the test when
// there is none, failing it under CI=true.
func serverBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"redis-server", "valkey-server"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if inCI() {
		t.Fatal("redis-server not found: under CI=true a missing server is a failure (apt-get install redis-server, or run `make test`)")
	}
	t.Skip("redis-server not installed: apt-get install redis-server, or run `make test`")
	return ""
}

// startServer starts a server with no persistence on a free loopback port and
// stops it when the test ends.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	s := &server{t: t, bin: serverBinary(t), dir: t.TempDir(), args: args}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start (re)starts the server on its port and waits until it answers.
func (s *server) start() {
	s.t.Helper()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", s.dir,
	}, s.args...)
	cmd := exec.Command(s.bin, args...)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.out, s.exited = cmd, out, exited
	s.mu.Unlock()

	deadline := time.Now().Add(10 * time.Second)
	for !ping(s.addr()) {
		select {
		case <-exited:
			s.t.Fatalf("%s exited at start:\n%s", s.bin, out)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s on %s did not answer within 10s:\n%s", s.bin, s.addr(), out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kill kills the process by its pid and waits for it to be gone.
func (s *server) kill() {
	s.t.Helper()
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		s.t.Fatalf("kill %d: %v", cmd.Process.Pid, err)
	}
	<-exited
}

func (s *server) signal(sig syscall.Signal) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v to %d: %v", sig, s.cmd.Process.Pid, err)
	}
}

// stop ends the process if it is still running, even a stopped one.
func (s *server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	select {
	case <-exited:
		return
	default:
	}
	cmd.Process.Signal(syscall.SIGCONT)
	cmd.Process.Kill()
	<-exited
}

// ping reports whether something answering PING listens on addr.
func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// slack is how late past its bound a failing call may return: scheduling
// noise on a loaded machine.
const slack = 500 * time.Millisecond

// Names that must never show up in an error message.
const (
	faultKey    = "k-3f9c0a"
	faultRecord = "record-7d1e"
	faultOwner  = "owner-c41b"
	faultEpoch  = "epoch-0a93"
)

func checkErrorText(t *testing.T, op string, err error) {
	t.Helper()
	for _, secret := range []string{faultKey, faultRecord, faultOwner, faultEpoch} {
		if msg := err.Error(); strings.Contains(msg, secret) {
			t.Errorf("%s error %q contains %q", op, msg, secret)
		}
	}
}

// faultOps are the calls each fault test makes, one of each kind.
func faultOps(s *valkeystore.Store) []struct {
	name string
	do   func(context.Context) error
} {
	write := func(op store.Op) func(context.Context) error {
		return func(ctx context.Context) error { return s.Write(ctx, []store.Op{op}) }
	}
	return []struct {
		name string
		do   func(context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, _, err := s.Load(ctx, faultKey); return err }},
		{"create", write(store.Op{Key: faultKey + "-new", New: []byte(faultRecord), Expiry: later()})},
		{"replace", write(store.Op{Key: faultKey, Old: []byte(faultRecord), New: []byte(faultRecord + "2"), Expiry: later()})},
		{"delete", write(store.Op{Key: faultKey, Old: []byte(faultRecord)})},
		{"rotation", func(ctx context.Context) error {
			return s.Write(ctx, []store.Op{
				{Key: faultKey + "-next", New: []byte(faultRecord), Expiry: later()},
				{Key: faultKey, Old: []byte(faultRecord)},
			})
		}},
		{"Bind", func(ctx context.Context) error {
			_, err := s.Index().Bind(ctx, faultOwner, faultKey, later(), []byte(faultEpoch))
			return err
		}},
		{"Unbind", func(ctx context.Context) error { return s.Index().Unbind(ctx, faultOwner, faultKey) }},
		{"Sessions", func(ctx context.Context) error { _, err := s.Index().Sessions(ctx, faultOwner); return err }},
		{"Epoch", func(ctx context.Context) error { _, err := s.Index().Epoch(ctx, faultOwner); return err }},
		{"SetEpoch", func(ctx context.Context) error {
			return s.Index().SetEpoch(ctx, faultOwner, []byte(faultEpoch), later())
		}},
	}
}

// TestServerDownAndBack kills the server: every call then fails within its
// context's bound without panicking. A new server on the same port is then
// used by the same client, with nothing rebuilt, and the client-side cache
// does not serve records the old server held.
func TestServerDownAndBack(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, []string{srv.addr()})
	plain := valkeystore.New(client, valkeystore.Options{})
	cached := valkeystore.New(client, valkeystore.Options{CacheTTL: time.Minute})
	ctx := context.Background()

	create(t, plain, faultKey, []byte(faultRecord), later())
	cached.LoadHit(ctx, faultKey)
	if rec, _, hit, err := cached.LoadHit(ctx, faultKey); err != nil || string(rec) != faultRecord || !hit {
		t.Fatalf("cached Load = %q, hit %v, %v; want a cache hit", rec, hit, err)
	}

	srv.kill()

	const bound = 500 * time.Millisecond
	for _, op := range faultOps(plain) {
		cctx, cancel := context.WithTimeout(ctx, bound)
		start := time.Now()
		err := op.do(cctx)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Errorf("%s with the server down: no error", op.name)
			continue
		}
		t.Logf("%s with the server down: %v (after %v)", op.name, err, took.Round(time.Millisecond))
		if took > bound+slack {
			t.Errorf("%s with the server down took %v; want an error within about %v", op.name, took, bound)
		}
		checkErrorText(t, op.name, err)
	}

	srv.start()
	poll(t, 5*time.Second, "the client never reconnected", func() bool {
		cctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		_, _, err := plain.Load(cctx, faultKey)
		return err == nil
	})
	// The new server is empty: a stale cached copy must not survive the
	// lost connection.
	if rec, found, err := cached.Load(ctx, faultKey); err != nil || found {
		t.Fatalf("cached Load after the restart = %q, %v, %v; want not found (the server is new)", rec, found, err)
	}
	// The new server has not seen the script either.
	create(t, plain, faultKey, []byte("again"), later())
	mustLoad(t, plain, faultKey, "again")
}

// TestServerHangs stops the server process (SIGSTOP), so it accepts bytes and
// answers nothing: calls fail with context.DeadlineExceeded within
// Options.Timeout (plus valkey-go's release of a connection, as the package
// documents), or the caller's earlier deadline. After SIGCONT the same
// client works again.
func TestServerHangs(t *testing.T) {
	srv := startServer(t)
	client := newClient(t, []string{srv.addr()})
	const timeout = 200 * time.Millisecond
	s := valkeystore.New(client, valkeystore.Options{Timeout: timeout})
	ctx := context.Background()
	create(t, s, faultKey, []byte(faultRecord), later())

	srv.signal(syscall.SIGSTOP)
	for _, op := range faultOps(s) {
		// A call that had to open a new connection may also wait for
		// valkey-go to release the one whose handshake timed out (see
		// releaseDelay).
		checkDeadline(t, op.name, ctx, timeout+releaseDelay, op.do)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	load := func(ctx context.Context) error { _, _, err := s.Load(ctx, faultKey); return err }
	checkDeadline(t, "Load with a shorter caller deadline", short, 50*time.Millisecond, load)

	srv.signal(syscall.SIGCONT)
	poll(t, 5*time.Second, "the client never recovered from the hung server", func() bool {
		return load(ctx) == nil
	})
}

// checkDeadline runs do and checks that it fails with
// context.DeadlineExceeded within about want.
func checkDeadline(t *testing.T, name string, ctx context.Context, want time.Duration, do func(context.Context) error) {
	t.Helper()
	if err := checkFails(t, name, ctx, want, do); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%s on a silent server: %v; want context.DeadlineExceeded", name, err)
	}
}

// checkFails runs do and checks that it fails within about want, with an
// error that names neither key nor record, and returns the error.
func checkFails(t *testing.T, name string, ctx context.Context, want time.Duration, do func(context.Context) error) error {
	t.Helper()
	start := time.Now()
	err := do(ctx)
	took := time.Since(start)
	if err == nil {
		t.Errorf("%s on a silent server: no error", name)
	} else {
		checkErrorText(t, name, err)
	}
	if took > want+slack {
		t.Errorf("%s on a silent server took %v; want about %v", name, took, want)
	}
	t.Logf("%s: %v after %v", name, err, took.Round(time.Millisecond))
	return err
}

// silentProxy passes connections through to a server until it is told to
// go silent: then it drops them, and accepts new ones without ever
// answering, like a server that hangs between accepting a connection and
// its handshake.
type silentProxy struct {
	t      *testing.T
	l      net.Listener
	target string

	mu     sync.Mutex
	silent bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startProxy(t *testing.T, target string) *silentProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{t: t, l: l, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(func() {
		l.Close()
		p.setSilent(false) // closes every connection
		p.wg.Wait()
	})
	return p
}

func (p *silentProxy) addr() string { return p.l.Addr().String() }

func (p *silentProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		silent := p.silent
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		if silent {
			p.wg.Go(func() { io.Copy(io.Discard, c) })
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(up, c); up.Close() })
		p.wg.Go(func() { io.Copy(c, up); c.Close() })
	}
}

// setSilent drops every connection and sets how new ones are served.
func (p *silentProxy) setSilent(silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = silent
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// releaseDelay is how long valkey-go may take, past a call's deadline, to
// give up a new connection whose handshake timed out: pipe.Close waits up to
// a second for the connection's queue to drain (see the package
// documentation).
const releaseDelay = time.Second

// TestServerSilent: the server accepts connections and never answers (the
// connection the client had is gone, so it must open a new one). Each call,
// concurrent ones too, fails within the bound the package documentation
// gives: Options.Timeout (a call with a shorter deadline may wait for a
// connection another call is opening), plus valkey-go's release of a
// connection whose handshake timed out.
func TestServerSilent(t *testing.T) {
	srv := startServer(t)
	proxy := startProxy(t, srv.addr())
	client := newClient(t, []string{proxy.addr()})
	const timeout = 200 * time.Millisecond
	for _, cache := range []time.Duration{0, time.Minute} {
		s := valkeystore.New(client, valkeystore.Options{Timeout: timeout, CacheTTL: cache})
		ctx := context.Background()
		create(t, s, faultKey, []byte(faultRecord), later())

		// A call may first meet a connection the proxy dropped (EOF)
		// before the client opens a new one; any failure will do, in time.
		proxy.setSilent(true)
		for _, op := range faultOps(s) {
			checkFails(t, op.name, ctx, timeout+releaseDelay, op.do)
		}

		var wg sync.WaitGroup
		ops := faultOps(s)
		for i := range 16 {
			op := ops[i%len(ops)]
			wg.Go(func() {
				ctx := ctx
				if i%4 == 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				}
				checkFails(t, "concurrent "+op.name, ctx, timeout+releaseDelay, op.do)
			})
		}
		wg.Wait()

		proxy.setSilent(false)
		poll(t, 5*time.Second, "the client never recovered from the silent server", func() bool {
			_, _, err := s.Load(ctx, faultKey)
			return err == nil
		})
		remove(t, s, faultKey, []byte(faultRecord))
	}
}

// TestOutOfMemory fills a server with a memory limit and no eviction until it
// rejects writes: Write then reports the server's OOM error, and what was
// stored before is intact.
func TestOutOfMemory(t *testing.T) {
	srv := startServer(t, "--maxmemory-policy", "noeviction")
	client := newClient(t, []string{srv.addr()})
	s := valkeystore.New(client, valkeystore.Options{})
	ctx := context.Background()

	// The limit is set from what the idle server already uses, so that the
	// test does not depend on the server version's baseline.
	info, err := client.Do(ctx, client.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			used, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if used == 0 {
		t.Fatalf("no used_memory in INFO memory:\n%s", info)
	}
	limit := strconv.FormatInt(used+512<<10, 10)
	if err := client.Do(ctx, client.B().ConfigSet().ParameterValue().ParameterValue("maxmemory", limit).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	create(t, s, "keep", []byte("precious"), later())
	big := bytes.Repeat([]byte{'x'}, 64<<10)
	var writeErr error
	for i := 0; i < 100 && writeErr == nil; i++ {
		writeErr = s.Write(ctx, []store.Op{{Key: "fill-" + strconv.Itoa(i), New: big, Expiry: later()}})
	}
	if writeErr == nil {
		t.Fatalf("6.4 MB of writes under a limit of %s bytes were all accepted", limit)
	}
	t.Logf("Write on a full server: %v", writeErr)
	var verr *valkey.ValkeyError
	if !errors.As(writeErr, &verr) || !strings.Contains(writeErr.Error(), "OOM") {
		t.Errorf("Write on a full server: %v; want the server's OOM error", writeErr)
	}
	if !strings.HasPrefix(writeErr.Error(), "valkeystore: write:") {
		t.Errorf("Write error %q does not say where it comes from", writeErr)
	}
	mustLoad(t, s, "keep", "precious")
	// Deleting still works, and frees room.
	remove(t, s, "fill-0", big)
}
