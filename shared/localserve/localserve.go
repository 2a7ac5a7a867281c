// Package localserve runs an http.Handler as a local process: the "same
// binary, second home" of every function when it is not on Lambda.
package localserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Addr picks the listen address: the flag, then SLUICE_ADDR, then PORT (on
// loopback), then the configured address, then 127.0.0.1:8080.
func Addr(flagAddr, configured string) string {
	switch {
	case flagAddr != "":
		return flagAddr
	case os.Getenv("SLUICE_ADDR") != "":
		return os.Getenv("SLUICE_ADDR")
	case os.Getenv("PORT") != "":
		return "127.0.0.1:" + os.Getenv("PORT")
	case configured != "":
		return configured
	}
	return "127.0.0.1:8080"
}

// ReadTimeout bounds reading a request's headers and body, for every
// handler: a backstop, so that no handler that reads a body without its own
// deadline (the chat API sets a shorter one, server.body_timeout) can be
// held by a client that trickles it. net/http lifts the deadline once the
// body is read, so answers that stream for minutes are not cut.
const ReadTimeout = 2 * time.Minute

// server is the http.Server Run uses.
func server(h http.Handler, readTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		IdleTimeout:       120 * time.Second,
	}
}

// Run serves h on addr until SIGINT or SIGTERM, then drains in-flight
// requests for up to drain. It logs the URL it listens on, which matters
// when addr asks for port 0.
func Run(addr string, h http.Handler, log *slog.Logger, drain time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := server(h, ReadTimeout)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "url", "http://"+ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain", drain.String())
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
