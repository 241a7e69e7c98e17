// A minimal containerd-stargz-grpc for Ferry's benchmarks: the stargz-snapshotter library (fs + snapshot) served
// over containerd's snapshots gRPC API on a unix socket. Debian ships the library but not this command, and not
// the CRI API its `service` package needs, so this wires fs and snapshot directly (default labels only).
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	snapshotsapi "github.com/containerd/containerd/api/services/snapshots/v1"
	"github.com/containerd/containerd/contrib/snapshotservice"
	"github.com/containerd/containerd/reference"
	"github.com/containerd/containerd/remotes/docker"
	stargzfs "github.com/containerd/stargz-snapshotter/fs"
	fsconfig "github.com/containerd/stargz-snapshotter/fs/config"
	"github.com/containerd/stargz-snapshotter/fs/layer"
	"github.com/containerd/stargz-snapshotter/fs/source"
	snbase "github.com/containerd/stargz-snapshotter/snapshot"
	"google.golang.org/grpc"
)

func main() {
	address := flag.String("address", "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock", "socket")
	root := flag.String("root", "/var/lib/containerd-stargz-grpc", "state directory")
	noBackground := flag.Bool("no-background-fetch", false, "disable the background fetcher")
	noPrefetch := flag.Bool("no-prefetch", false, "disable prefetch of the prioritized files")
	flag.Parse()
	ctx := context.Background()
	// Every registry is plain HTTP: the benchmarks' registries live on loopback or in their own netns.
	hosts := func(ref reference.Spec) ([]docker.RegistryHost, error) {
		// The library round-trips through Client.Transport itself: it must not be nil.
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(), Timeout: 5 * time.Minute}
		return []docker.RegistryHost{{
			Client:       client,
			Host:         ref.Hostname(),
			Scheme:       "http",
			Path:         "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			Authorizer:   docker.NewDockerAuthorizer(docker.WithAuthClient(client)),
		}}, nil
	}
	cfg := fsconfig.Config{NoBackgroundFetch: *noBackground, NoPrefetch: *noPrefetch}
	fs, err := stargzfs.NewFilesystem(filepath.Join(*root, "stargz"), cfg,
		stargzfs.WithGetSources(source.FromDefaultLabels(hosts)),
		stargzfs.WithOverlayOpaqueType(layer.OverlayOpaqueTrusted))
	if err != nil {
		log.Fatalf("filesystem: %v", err)
	}
	sn, err := snbase.NewSnapshotter(ctx, filepath.Join(*root, "snapshotter"), fs, snbase.AsynchronousRemove)
	if err != nil {
		log.Fatalf("snapshotter: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(*address), 0o700); err != nil {
		log.Fatal(err)
	}
	_ = os.Remove(*address)
	l, err := net.Listen("unix", *address)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	snapshotsapi.RegisterSnapshotsServer(srv, snapshotservice.FromSnapshotter(sn))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		srv.Stop()
		_ = sn.Close()
		os.Exit(0)
	}()
	log.Printf("serving on %s", *address)
	if err := srv.Serve(l); err != nil {
		log.Fatal(err)
	}
}
