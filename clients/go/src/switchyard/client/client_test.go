package client

import (
	"context"
	"io"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	costv1 "switchyard/api/cost/v1"
	inferencev1 "switchyard/api/inference/v1"
	routerv1 "switchyard/api/router/v1"
)

// Tests against a LIVE router, whose address comes from SWITCHYARD_ROUTER_ADDRESS (tests/clients/
// starts one with its real dependencies). SWITCHYARD_TEST_TRACEPARENT, when set, is sent with
// the first Complete call; the driver checks that the router's spans joined that trace.

func TestWithTraceparentValidates(t *testing.T) {
	if _, err := WithTraceparent(context.Background(), "nope", ""); err == nil {
		t.Fatal("accepted a bad traceparent")
	}
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx, err := WithTraceparent(context.Background(), tp, "k=v")
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{apiKey: "secret", timeout: time.Second}
	out, cancel := c.outgoing(ctx)
	defer cancel()
	md, _ := metadata.FromOutgoingContext(out)
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != tp {
		t.Fatalf("traceparent metadata = %v", got)
	}
	if got := md.Get("authorization"); len(got) != 1 || got[0] != "Bearer secret" {
		t.Fatalf("authorization metadata = %v", got)
	}
	if _, ok := out.Deadline(); !ok {
		t.Fatal("no deadline on the outgoing call")
	}
}

func TestTraceparentFromIncoming(t *testing.T) {
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	in := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", tp))
	c := &Client{timeout: time.Second}
	out, cancel := c.outgoing(TraceparentFromIncoming(in))
	defer cancel()
	md, _ := metadata.FromOutgoingContext(out)
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != tp {
		t.Fatalf("traceparent metadata = %v", got)
	}
}

func live(t *testing.T) (*Client, *inferencev1.GenerationParameters, uint32) {
	t.Helper()
	address := os.Getenv("SWITCHYARD_ROUTER_ADDRESS")
	if address == "" {
		t.Skip("SWITCHYARD_ROUTER_ADDRESS is not set")
	}
	c, err := Dial(address, Options{APIKey: os.Getenv("SWITCHYARD_API_KEY"), Timeout: 180 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n, err := strconv.Atoi(os.Getenv("SWITCHYARD_MAX_TOKENS"))
	if err != nil || n <= 0 {
		n = 8
	}
	mt, temp := uint32(n), float32(0)
	return c, &inferencev1.GenerationParameters{MaxTokens: &mt, Temperature: &temp}, mt
}

func TestLiveRouter(t *testing.T) {
	c, params, maxTokens := live(t)
	ctx := context.Background()
	made := uint64(0)
	answered := ""

	t.Run("Complete", func(t *testing.T) {
		callCtx := ctx
		if tp := os.Getenv("SWITCHYARD_TEST_TRACEPARENT"); tp != "" {
			var err error
			if callCtx, err = WithTraceparent(ctx, tp, ""); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := c.Complete(callCtx, &routerv1.CompleteRequest{
			Messages:   []*inferencev1.ChatMessage{SystemMessage("You answer briefly."), UserMessage("What is the capital of France?")},
			Parameters: params,
		})
		if err != nil {
			t.Fatal(err)
		}
		made++
		answered = resp.RequestId
		if resp.RequestId == "" || resp.Text == "" || resp.Decision.GetTarget() == "" {
			t.Fatalf("incomplete response: %v", resp)
		}
		if out := resp.Usage.GetOutputTokens(); out == 0 || out > maxTokens {
			t.Fatalf("output tokens %d not in 1..%d", out, maxTokens)
		}
		sum, generated := 0.0, false
		for _, hop := range resp.Cost.GetHops() {
			sum += hop.CostUsd
			if hop.Kind == routerv1.HopKind_HOP_KIND_GENERATE && hop.Status == "OK" {
				generated = true
			}
		}
		if !generated {
			t.Fatalf("no successful generate hop: %v", resp.Cost.GetHops())
		}
		if math.Abs(sum-resp.Cost.GetTotalCostUsd()) > 1e-9 {
			t.Fatalf("hops sum to %g, total says %g", sum, resp.Cost.GetTotalCostUsd())
		}
	})

	t.Run("CompleteStream", func(t *testing.T) {
		stream, err := c.CompleteStream(ctx, &routerv1.CompleteStreamRequest{
			Messages: []*inferencev1.ChatMessage{UserMessage("Count from 1 to 5.")}, Parameters: params,
		})
		if err != nil {
			t.Fatal(err)
		}
		var events []*routerv1.CompleteStreamResponse
		for {
			ev, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			events = append(events, ev)
		}
		made++
		if len(events) < 3 || events[0].GetDecision() == nil || events[len(events)-1].GetSummary() == nil {
			t.Fatalf("want decision, deltas, summary; got %d events", len(events))
		}
		text := ""
		for _, ev := range events[1 : len(events)-1] {
			if ev.GetDelta() == nil {
				t.Fatalf("event between decision and summary is not a delta: %v", ev)
			}
			text += ev.GetDelta().Text
		}
		if text == "" || stream.Summary().GetUsage().GetOutputTokens() == 0 {
			t.Fatalf("empty stream: %q %v", text, stream.Summary())
		}
	})

	t.Run("Route", func(t *testing.T) {
		resp, err := c.Route(ctx, &routerv1.RouteRequest{Messages: []*inferencev1.ChatMessage{UserMessage("Write a haiku about autumn.")}})
		if err != nil {
			t.Fatal(err)
		}
		d := resp.Decision
		if d.GetTarget() == "" || d.EscalationScore < 0 || d.EscalationScore > 1 {
			t.Fatalf("bad decision: %v", d)
		}
		classified := false
		for _, hop := range resp.Cost.GetHops() {
			if hop.Kind == routerv1.HopKind_HOP_KIND_GENERATE {
				t.Fatalf("route-only call generated: %v", hop)
			}
			classified = classified || (hop.Kind == routerv1.HopKind_HOP_KIND_CLASSIFY && hop.Status == "OK")
		}
		if !classified || d.Reason == routerv1.DecisionReason_DECISION_REASON_CLASSIFIER_UNAVAILABLE || d.GetClassification() == nil {
			t.Fatalf("the decision does not rest on the classifier: %v", d)
		}
	})

	t.Run("Feedback", func(t *testing.T) {
		if answered == "" {
			t.Skip("no answered request")
		}
		rated, err := c.Feedback(ctx, answered, true, "checked by the Go client test")
		if err != nil {
			t.Fatal(err)
		}
		if rated.RequestId != answered || rated.RatedTier == routerv1.TargetKind_TARGET_KIND_UNSPECIFIED || rated.RatedModel == "" {
			t.Fatalf("bad feedback response: %v", rated)
		}
		_, err = c.Feedback(ctx, "no-such-request", false, "")
		if status.Code(err) != codes.NotFound {
			t.Fatalf("feedback for an unknown request: %v", err)
		}
	})

	t.Run("CostReport", func(t *testing.T) {
		report, err := c.CostReport(ctx, &costv1.GetCostReportRequest{
			EndTime: timestamppb.New(time.Now().Add(time.Minute)),
			GroupBy: costv1.CostGrouping_COST_GROUPING_MODEL,
		})
		if err != nil {
			t.Fatal(err)
		}
		if report.Total.GetRequests() < made {
			t.Fatalf("report counts %d requests, this test made %d", report.Total.GetRequests(), made)
		}
		var rows uint64
		for _, r := range report.Rows {
			rows += r.Requests
		}
		if rows != report.Total.GetRequests() || report.Total.GetCostUsd() <= 0 {
			t.Fatalf("rows sum to %d of %d requests; cost %g", rows, report.Total.GetRequests(), report.Total.GetCostUsd())
		}
	})

	t.Run("DeadlineExceeded", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, time.Millisecond)
		defer cancel()
		_, err := c.Ask(short, "Tell me a long story.", params)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("want DEADLINE_EXCEEDED, got %v", err)
		}
	})

	t.Run("Unauthenticated", func(t *testing.T) {
		if os.Getenv("SWITCHYARD_API_KEY") == "" {
			t.Skip("no API key configured")
		}
		bad, err := Dial(os.Getenv("SWITCHYARD_ROUTER_ADDRESS"), Options{APIKey: "not-a-key"})
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		_, err = bad.Route(ctx, &routerv1.RouteRequest{Messages: []*inferencev1.ChatMessage{UserMessage("hello")}})
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("want UNAUTHENTICATED, got %v", err)
		}
	})

	t.Run("InvalidArgument", func(t *testing.T) {
		_, err := c.Route(ctx, &routerv1.RouteRequest{})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("want INVALID_ARGUMENT for a request without messages, got %v", err)
		}
	})
}
