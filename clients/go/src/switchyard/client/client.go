// Package client is the Go client of Switchyard's router: Complete, CompleteStream, Route,
// Feedback and CostReport over gRPC, with a deadline on every call, `authorization: Bearer <key>` metadata
// and W3C trace context (`traceparent`, `tracestate`) propagation, so a caller's trace
// continues into the router and every service behind it.
//
// The request and response types are the contract's own (switchyard/api/...), generated from
// protos/ by clients/go/generate.sh.
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	costv1 "switchyard/api/cost/v1"
	inferencev1 "switchyard/api/inference/v1"
	routerv1 "switchyard/api/router/v1"
)

// DefaultTimeout is the deadline given to a call whose context has none.
const DefaultTimeout = 60 * time.Second

// Options configure a Client.
type Options struct {
	// APIKey is sent as `authorization: Bearer <key>` on every call (empty: none).
	APIKey string
	// Timeout is the deadline of a call whose context has none (0: DefaultTimeout).
	Timeout time.Duration
	// TLS secures the channel; nil means plaintext (a sidecar or a private network).
	TLS credentials.TransportCredentials
	// DialOptions are appended to the client's own.
	DialOptions []grpc.DialOption
}

// Client calls the router's RouterService, OutcomeService and CostService over one channel.
type Client struct {
	conn     *grpc.ClientConn
	router   routerv1.RouterServiceClient
	outcomes routerv1.OutcomeServiceClient
	cost     costv1.CostServiceClient
	apiKey   string
	timeout  time.Duration
}

// Dial opens a channel to the router at address (host:port). It does not wait for the
// connection: the first call does, within its deadline.
func Dial(address string, opts Options) (*Client, error) {
	if address == "" {
		return nil, errors.New("switchyard: address is required (host:port of the router)")
	}
	c := &Client{apiKey: opts.APIKey, timeout: opts.Timeout}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	transport := grpc.WithInsecure()
	if opts.TLS != nil {
		transport = grpc.WithTransportCredentials(opts.TLS)
	}
	dial := append([]grpc.DialOption{
		transport,
		grpc.WithUserAgent("switchyard-go/0.1.0"),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithChainUnaryInterceptor(c.unaryInterceptor),
		grpc.WithChainStreamInterceptor(c.streamInterceptor),
	}, opts.DialOptions...)
	conn, err := grpc.Dial(address, dial...)
	if err != nil {
		return nil, fmt.Errorf("switchyard: dial %s: %w", address, err)
	}
	c.conn = conn
	c.router = routerv1.NewRouterServiceClient(conn)
	c.outcomes = routerv1.NewOutcomeServiceClient(conn)
	c.cost = costv1.NewCostServiceClient(conn)
	return c, nil
}

// Close closes the channel.
func (c *Client) Close() error { return c.conn.Close() }

// Conn is the underlying channel (for health checks or other services on the same address).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

type traceKey struct{}

type traceContext struct{ traceparent, tracestate string }

var traceparentPattern = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)

// WithTraceparent returns a context whose calls continue the given W3C trace: the router's
// spans become children of the span traceparent names. tracestate may be empty.
func WithTraceparent(ctx context.Context, traceparent, tracestate string) (context.Context, error) {
	if !traceparentPattern.MatchString(traceparent) {
		return ctx, fmt.Errorf("switchyard: not a W3C traceparent: %q", traceparent)
	}
	return context.WithValue(ctx, traceKey{}, traceContext{traceparent, tracestate}), nil
}

// TraceparentFromIncoming continues the trace of an incoming gRPC call: when ctx is a server
// handler's context whose metadata has a traceparent, the outgoing calls carry it on.
func TraceparentFromIncoming(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	tp := md.Get("traceparent")
	if len(tp) == 0 || !traceparentPattern.MatchString(tp[0]) {
		return ctx
	}
	ts := ""
	if v := md.Get("tracestate"); len(v) > 0 {
		ts = v[0]
	}
	return context.WithValue(ctx, traceKey{}, traceContext{tp[0], ts})
}

// outgoing adds the key and the trace context to the call's metadata and gives it a deadline
// when it has none; cancel must be called when the call is over.
func (c *Client) outgoing(ctx context.Context) (context.Context, context.CancelFunc) {
	pairs := make([]string, 0, 6)
	if c.apiKey != "" {
		pairs = append(pairs, "authorization", "Bearer "+c.apiKey)
	}
	if tc, ok := ctx.Value(traceKey{}).(traceContext); ok {
		pairs = append(pairs, "traceparent", tc.traceparent)
		if tc.tracestate != "" {
			pairs = append(pairs, "tracestate", tc.tracestate)
		}
	}
	if len(pairs) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, pairs...)
	}
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.timeout)
}

func (c *Client) unaryInterceptor(ctx context.Context, method string, req, reply interface{},
	cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, cancel := c.outgoing(ctx)
	defer cancel()
	return invoker(ctx, method, req, reply, cc, opts...)
}

func (c *Client) streamInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn,
	method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	ctx, cancel := c.outgoing(ctx)
	stream, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		cancel()
		return nil, err
	}
	return &cancelOnEnd{ClientStream: stream, cancel: cancel}, nil
}

// cancelOnEnd releases the deadline's timer when the stream ends.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m interface{}) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// UserMessage is a user turn.
func UserMessage(text string) *inferencev1.ChatMessage {
	return &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_USER, Content: text}
}

// SystemMessage is a system turn.
func SystemMessage(text string) *inferencev1.ChatMessage {
	return &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_SYSTEM, Content: text}
}

// AssistantMessage is an earlier answer of the model.
func AssistantMessage(text string) *inferencev1.ChatMessage {
	return &inferencev1.ChatMessage{Role: inferencev1.Role_ROLE_ASSISTANT, Content: text}
}

// Complete routes and answers one request.
func (c *Client) Complete(ctx context.Context, req *routerv1.CompleteRequest) (*routerv1.CompleteResponse, error) {
	return c.router.Complete(ctx, req)
}

// Ask is Complete for a single user prompt.
func (c *Client) Ask(ctx context.Context, prompt string, params *inferencev1.GenerationParameters) (*routerv1.CompleteResponse, error) {
	return c.Complete(ctx, &routerv1.CompleteRequest{
		Messages:   []*inferencev1.ChatMessage{UserMessage(prompt)},
		Parameters: params,
	})
}

// Stream is one CompleteStream call. Recv returns the decision first, then deltas, then the
// summary, then io.EOF. A stream that ends without a summary returns an error, not io.EOF.
type Stream struct {
	inner   routerv1.RouterService_CompleteStreamClient
	summary *routerv1.CompleteStreamSummary
}

// CompleteStream routes one request and streams the answer.
func (c *Client) CompleteStream(ctx context.Context, req *routerv1.CompleteStreamRequest) (*Stream, error) {
	inner, err := c.router.CompleteStream(ctx, req)
	if err != nil {
		return nil, err
	}
	return &Stream{inner: inner}, nil
}

// Recv returns the next event.
func (s *Stream) Recv() (*routerv1.CompleteStreamResponse, error) {
	msg, err := s.inner.Recv()
	if err == io.EOF {
		if s.summary == nil {
			return nil, status.Error(codes.Unknown, "switchyard: stream ended without a summary")
		}
		return nil, io.EOF
	}
	if err != nil {
		return nil, err
	}
	if sum := msg.GetSummary(); sum != nil {
		s.summary = sum
	}
	return msg, nil
}

// Summary is the stream's closing message, once received.
func (s *Stream) Summary() *routerv1.CompleteStreamSummary { return s.summary }

// Route returns the routing decision only; nothing is generated.
func (c *Client) Route(ctx context.Context, req *routerv1.RouteRequest) (*routerv1.RouteResponse, error) {
	return c.router.Route(ctx, req)
}

// CostReport aggregates the router's ledger over a window (the key's tenant only).
func (c *Client) CostReport(ctx context.Context, req *costv1.GetCostReportRequest) (*costv1.GetCostReportResponse, error) {
	return c.cost.GetCostReport(ctx, req)
}

// Feedback rates the answer of one of the key's own requests (CompleteResponse.RequestId):
// good or not, with an optional reason of at most 500 characters. The last verdict wins.
func (c *Client) Feedback(ctx context.Context, requestID string, good bool, reason string) (*routerv1.SubmitFeedbackResponse, error) {
	verdict := routerv1.FeedbackVerdict_FEEDBACK_VERDICT_NOT_GOOD
	if good {
		verdict = routerv1.FeedbackVerdict_FEEDBACK_VERDICT_GOOD
	}
	return c.outcomes.SubmitFeedback(ctx, &routerv1.SubmitFeedbackRequest{
		RequestId: requestID, Verdict: verdict, Reason: reason,
	})
}
