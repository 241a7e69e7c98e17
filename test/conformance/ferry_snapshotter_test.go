// containerd's own snapshotter conformance suite (snapshots/testsuite of containerd 1.6, as Debian ships it) run
// against `ferry daemon` through containerd's proxy client, one fresh daemon per test, as containerd would use it.
// test/integration/containerd-conformance.test.ts runs this with `go test` in GOPATH mode (no network).
package conformance

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/pkg/dialer"
	"github.com/containerd/containerd/snapshots"
	"github.com/containerd/containerd/snapshots/proxy"
	"github.com/containerd/containerd/snapshots/testsuite"
	"google.golang.org/grpc"
)

func TestFerrySnapshotter(t *testing.T) {
	if os.Getenv("FERRY_BIN") == "" || os.Getenv("FERRY_NODE") == "" {
		t.Fatal("FERRY_BIN must name the built bin/ferry.js and FERRY_NODE the node binary to run it with")
	}
	testsuite.SnapshotterSuite(t, "Ferry", newSnapshotter)
}

var holderPidRe = regexp.MustCompile(`"holderPid":(\d+)`)

// newSnapshotter starts `ferry daemon` with its state beside the suite's root and its snapshots in the root
// itself (the suite mounts what Prepare returns, so the root only has to be Ferry's own).
func newSnapshotter(ctx context.Context, root string) (snapshots.Snapshotter, func() error, error) {
	dir := filepath.Dir(root)
	socket := filepath.Join(dir, "run", "snapshotter.sock")
	config := filepath.Join(dir, "ferry.toml")
	toml := fmt.Sprintf("[daemon]\nstateDir = %q\nrunDir = %q\n\n[registry]\ndockerConfig = false\n\n"+
		"[snapshotter]\nroot = %q\nsocketPath = %q\n", filepath.Join(dir, "state"), filepath.Join(dir, "run"), root, socket)
	if err := os.WriteFile(config, []byte(toml), 0o644); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(os.Getenv("FERRY_NODE"), os.Getenv("FERRY_BIN"), "daemon", "--config", config)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} // a suite that panics on -timeout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	// Wait for the ready line (it names the FUSE holder the daemon spawned, which cleanup stops too); keep
	// draining stderr afterwards so the daemon never blocks on a full pipe.
	ready := make(chan string, 1)
	var mu sync.Mutex
	var log strings.Builder
	logText := func() string { mu.Lock(); defer mu.Unlock(); return log.String() }
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			if log.Len() < 1<<16 {
				log.WriteString(line + "\n")
			}
			mu.Unlock()
			if strings.Contains(line, `"ferry daemon ready"`) {
				ready <- line
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var readyLine string
	select {
	case line, ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			return nil, nil, fmt.Errorf("ferry daemon exited before it was ready: %s", logText())
		}
		readyLine = line
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, nil, fmt.Errorf("ferry daemon not ready in 60 s")
	}
	holderPid := 0
	if m := holderPidRe.FindStringSubmatch(readyLine); m != nil {
		holderPid, _ = strconv.Atoi(m[1])
	}
	// Dialled as containerd dials a proxy plugin (services/server: unix:// address, its own dialer).
	conn, err := grpc.DialContext(ctx, dialer.DialAddress(socket), grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(dialer.ContextDialer))
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, nil, err
	}
	sn := proxy.NewSnapshotter(snapshotsapi.NewSnapshotsClient(conn), "ferry")
	cleanup := func() error {
		sn.Close()
		conn.Close()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		if holderPid != 0 {
			stopProcess(holderPid)
		}
		if err != nil {
			return fmt.Errorf("ferry daemon did not exit cleanly: %v: %s", err, logText())
		}
		return nil
	}
	return sn, cleanup, nil
}

// stopProcess sends SIGTERM to pid (not our child: the holder is detached) and waits until it is gone.
func stopProcess(pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
