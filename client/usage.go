package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	gustv1 "github.com/gustfaas/gust/proto/gust/v1"
	"google.golang.org/grpc"
)

// StreamLogs is Logs with every option of the request: since (only lines
// written in the last SinceMs) and timestamps (each line prefixed with
// when it was written, "2006-01-02T15:04:05.000Z "). Like Logs, it fails
// over to another coordinator only before the first line arrived.
func (c *Client) StreamLogs(ctx context.Context, req *gustv1.GetLogsRequest, fn func(worker string, data []byte) error) error {
	return c.call(ctx, func(conn *grpc.ClientConn) error {
		stream, err := gustv1.NewFunctionServiceClient(conn).GetLogs(ctx, req)
		if err != nil {
			return err
		}
		got := false
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if got && unreachable(err) {
					return fmt.Errorf("log stream broke: %w", err) // not retried: lines would repeat
				}
				return err
			}
			got = true
			if err := fn(msg.GetWorker(), msg.GetData()); err != nil {
				return err
			}
		}
	})
}

// Usage returns each function's invocations and billed GB-seconds over the
// last window (to the minute; 0 means all the workers retain), summed over
// every worker; name "" means every function. Workers that did not answer
// are listed in the response's MissingWorkers.
func (c *Client) Usage(ctx context.Context, name string, window time.Duration) (*gustv1.GetUsageResponse, error) {
	var res *gustv1.GetUsageResponse
	err := c.call(ctx, func(conn *grpc.ClientConn) (err error) {
		res, err = gustv1.NewFunctionServiceClient(conn).GetUsage(ctx, &gustv1.GetUsageRequest{Name: name, WindowMs: window.Milliseconds()})
		return err
	})
	return res, err
}
