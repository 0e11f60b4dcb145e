// Command switchyard-example asks, streams, routes only and reads a cost report.
//
//	SWITCHYARD_ADDRESS=localhost:50051 SWITCHYARD_API_KEY=... switchyard-example
//
// Set TRACEPARENT=00-<32 hex>-<16 hex>-01 to continue an existing trace.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	costv1 "switchyard/api/cost/v1"
	inferencev1 "switchyard/api/inference/v1"
	routerv1 "switchyard/api/router/v1"
	"switchyard/client"
)

func env(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func main() {
	log.SetFlags(0)
	c, err := client.Dial(env("SWITCHYARD_ADDRESS", "localhost:50051"), client.Options{
		APIKey:  os.Getenv("SWITCHYARD_API_KEY"),
		Timeout: 120 * time.Second,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	ctx := context.Background()
	if tp := os.Getenv("TRACEPARENT"); tp != "" {
		if ctx, err = client.WithTraceparent(ctx, tp, os.Getenv("TRACESTATE")); err != nil {
			log.Fatal(err)
		}
	}
	maxTokens, _ := strconv.Atoi(env("SWITCHYARD_MAX_TOKENS", "32"))
	mt, temp := uint32(maxTokens), float32(0)
	params := &inferencev1.GenerationParameters{MaxTokens: &mt, Temperature: &temp}

	answer, err := c.Ask(ctx, "What is the capital of France? Answer in one word.", params)
	if err != nil {
		fail("ask", err)
	}
	fmt.Printf("ask: [%s %s] %s\n", answer.Decision.GetTarget(), answer.Decision.GetModel(), answer.Text)
	fmt.Printf("ask: request %s cost $%.8f\n", answer.RequestId, answer.Cost.GetTotalCostUsd())
	for _, hop := range answer.Cost.GetHops() {
		fmt.Printf("  hop %s %s %s %.1f ms $%.8f\n", hop.Kind, hop.Service, hop.Status, hop.LatencyMs, hop.CostUsd)
	}

	stream, err := c.CompleteStream(ctx, &routerv1.CompleteStreamRequest{
		Messages:   []*inferencev1.ChatMessage{client.UserMessage("Count from 1 to 5.")},
		Parameters: params,
	})
	if err != nil {
		fail("stream", err)
	}
	fmt.Print("stream: ")
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("stream", err)
		}
		switch e := ev.Event.(type) {
		case *routerv1.CompleteStreamResponse_Decision:
			fmt.Printf("[%s] ", e.Decision.Target)
		case *routerv1.CompleteStreamResponse_Delta:
			fmt.Print(e.Delta.Text)
		case *routerv1.CompleteStreamResponse_Summary:
			fmt.Printf("\nstream: %s, %d tokens, $%.8f\n", e.Summary.FinishReason, e.Summary.Usage.GetOutputTokens(), e.Summary.Cost.GetTotalCostUsd())
		}
	}

	routed, err := c.Route(ctx, &routerv1.RouteRequest{
		Messages: []*inferencev1.ChatMessage{client.UserMessage("Prove that there are infinitely many primes.")},
	})
	if err != nil {
		fail("route", err)
	}
	d := routed.Decision
	fmt.Printf("route: %s (%s) because %s: %s; estimated $%.8f\n", d.Target, d.TargetKind, d.Reason, d.ReasonDetail, d.EstimatedCostUsd)

	report, err := c.CostReport(ctx, &costv1.GetCostReportRequest{
		EndTime: timestamppb.New(time.Now().Add(time.Minute)),
		GroupBy: costv1.CostGrouping_COST_GROUPING_MODEL,
	})
	if err != nil {
		fail("cost report", err)
	}
	fmt.Printf("cost report: %d requests, $%.8f (saved $%.8f against %s)\n", report.Total.GetRequests(), report.Total.GetCostUsd(), report.Total.GetSavingUsd(), report.BaselineModel)
	routeOnly := report.Total.GetRouteOnly()
	fmt.Printf("  and %d route-only calls apart, $%.8f\n", routeOnly.GetRequests(), routeOnly.GetCostUsd())
	for _, row := range report.Rows {
		fmt.Printf("  %s: %d requests, $%.8f\n", row.Key, row.Requests, row.CostUsd)
	}
}

func fail(what string, err error) {
	s := status.Convert(err)
	log.Fatalf("%s failed: %s: %s", what, s.Code(), s.Message())
}
