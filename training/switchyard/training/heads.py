"""The three heads on top of the sentence embedding, fitted with scikit-learn, written as ONNX.

- task type: multinomial logistic regression on the embedding, the prompt's two ends (the
  encoder's ``end_states``) and three bags of wordpieces (``tokens.py``: the whole window, its
  first and its last tokens; a Gather of a token table in the graph), then temperature scaling
  fitted on a calibration split (so the probabilities mean what they say);
- complexity: ridge regression on the embedding, clipped to [0, 1];
- escalation (``escalation.py`` fits it): P = sigmoid(z) with
  z = trust * outcome score + transfer weights . [log tokens, complexity, task probabilities]
  + bias, where the outcome score is a linear model of [embedding, log tokens] learned from
  outcome records and trust (0..1) is how like the outcome data the prompt is (cosine
  similarity to the nearest outcome-data centroid, 0 at or below ``sim_low``, 1 at or above
  ``sim_high``). A model trained on a team's own outcomes may add, inside the trusted part,
  the neighbourhood term: softmax(T * cosine similarity to the team's outcome clusters) .
  each cluster's (scaled) gain (``escalation.Neighbourhood``). A model built without outcome
  records (``outcome_mix`` 0) reports the complexity score as its escalation score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from switchyard.training.encoder import END_STATES, HIDDEN, IR_VERSION, OPSET
from switchyard.training.escalation import NEIGHBOURHOOD_TEMPERATURE
from switchyard.training.tokens import EDGE_TOKENS, SEGMENTS, TOKEN_SCALE, VOCAB

__all__ = ["END_INPUT", "HEAD_IDS", "HEAD_MASK", "Heads", "build_heads_graph", "softmax"]

# The heads graph's token inputs (the encoder's input_ids / attention_mask, passed through).
HEAD_IDS = "head.input_ids"
HEAD_MASK = "head.attention_mask"
# The encoder's output of the prompt's two ends, read by a task head fitted on it.
END_INPUT = "end_states"


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class Heads:
    task_weights: np.ndarray  # [HIDDEN, types], already divided by the temperature
    task_bias: np.ndarray  # [types]
    temperature: float
    complexity_weights: np.ndarray  # [HIDDEN]
    complexity_bias: float
    outcome_weights: np.ndarray  # [HIDDEN], the outcome score's (scaled into logit units)
    outcome_length_weight: float  # on log(token count)
    outcome_bias: float
    transfer_length_weight: float  # on log(token count)
    transfer_complexity_weight: float
    transfer_task_weights: np.ndarray  # [types], on the task probabilities
    escalation_bias: float
    centroids: np.ndarray  # [k, HIDDEN], unit length
    sim_low: float
    sim_high: float
    outcome_mix: float = 1.0  # 0: no outcome data, escalation = complexity
    # [SEGMENTS * VOCAB, types] on ``tokens.bag_of_tokens``, divided by the temperature
    token_weights: np.ndarray | None = None
    # the neighbourhood term (team outcomes only): [k, HIDDEN] unit-length centroids and [k]
    # gains already in logit units
    neighbourhood_centroids: np.ndarray | None = None
    neighbourhood_gains: np.ndarray | None = None
    # [END_STATES, types] on the encoder's end_states, divided by the temperature
    task_end_weights: np.ndarray | None = None

    def task_logits(
        self,
        embedding: np.ndarray,
        token_bags: object | None,
        end_states: np.ndarray | None = None,
    ) -> np.ndarray:
        logits = embedding.astype(np.float64) @ self.task_weights + self.task_bias
        if self.task_end_weights is not None:
            if end_states is None:
                raise ValueError("this model's task head reads the prompt's ends: pass end_states")
            logits = logits + end_states.astype(np.float64) @ self.task_end_weights
        if self.token_weights is not None:
            if token_bags is None:
                raise ValueError("this model's task head reads token bags: pass token_bags")
            logits = logits + np.asarray(token_bags @ self.token_weights)  # type: ignore[operator]
        return logits

    def predict(
        self,
        embedding: np.ndarray,
        token_count: np.ndarray,
        token_bags: object | None = None,
        end_states: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The heads in numpy (float64): the reference for the ONNX graph."""
        e = embedding.astype(np.float64)
        log_n = np.log(token_count.reshape(-1).astype(np.float64))
        probs = softmax(self.task_logits(e, token_bags, end_states))
        complexity = np.clip(e @ self.complexity_weights + self.complexity_bias, 0.0, 1.0)
        outcome = e @ self.outcome_weights + log_n * self.outcome_length_weight + self.outcome_bias
        if self.neighbourhood_centroids is not None:
            weights = softmax(NEIGHBOURHOOD_TEMPERATURE * (e @ self.neighbourhood_centroids.T))
            outcome = outcome + weights @ np.asarray(self.neighbourhood_gains)
        z = (
            self.trust(e) * outcome
            + log_n * self.transfer_length_weight
            + complexity * self.transfer_complexity_weight
            + probs @ self.transfer_task_weights
            + self.escalation_bias
        )
        p = 1.0 / (1.0 + np.exp(-z))
        return {
            "task_probabilities": probs,
            "complexity": complexity,
            "escalation": complexity + self.outcome_mix * (p - complexity),
        }

    def trust(self, embedding: np.ndarray) -> np.ndarray:
        sim = (embedding.astype(np.float64) @ self.centroids.T).max(axis=1)
        return np.clip((sim - self.sim_low) / (self.sim_high - self.sim_low), 0.0, 1.0)


def build_heads_graph(heads: Heads) -> onnx.ModelProto:
    f32 = np.float32
    types = heads.task_bias.shape[0]

    def vec(values: np.ndarray, name: str) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(values, f32).reshape(-1, 1), name)

    def scalar(value: float, name: str, shape: tuple[int, ...] = (1,)) -> onnx.TensorProto:
        return numpy_helper.from_array(np.full(shape, value, f32), name)

    inits = [
        numpy_helper.from_array(heads.task_weights.astype(f32), "head.task_w"),
        numpy_helper.from_array(heads.task_bias.astype(f32), "head.task_b"),
        vec(heads.complexity_weights, "head.cx_w"),
        scalar(heads.complexity_bias, "head.cx_b"),
        vec(heads.outcome_weights, "head.out_w"),
        scalar(heads.outcome_length_weight, "head.out_len_w"),
        scalar(heads.outcome_bias, "head.out_b"),
        scalar(heads.transfer_length_weight, "head.tr_len_w"),
        scalar(heads.transfer_complexity_weight, "head.tr_cx_w"),
        vec(heads.transfer_task_weights, "head.tr_task_w"),
        scalar(heads.escalation_bias, "head.esc_b"),
        numpy_helper.from_array(
            np.ascontiguousarray(heads.centroids.T).astype(f32), "head.centroids_t"
        ),
        scalar(heads.sim_low, "head.sim_low", ()),
        scalar(1.0 / (heads.sim_high - heads.sim_low), "head.sim_inv_range", ()),
        scalar(heads.outcome_mix, "head.mix", ()),
        scalar(0.0, "head.zero", ()),
        scalar(1.0, "head.one", ()),
        numpy_helper.from_array(np.array([-1], np.int64), "head.flat"),
    ]
    if heads.token_weights is not None:
        # The graph's segment weights are plain term frequencies: the bags' scale goes here.
        table = TOKEN_SCALE * heads.token_weights.reshape(SEGMENTS, VOCAB, types).transpose(1, 0, 2)
        inits += [
            numpy_helper.from_array(
                np.ascontiguousarray(table.reshape(VOCAB, SEGMENTS * types)).astype(f32),
                "head.tok_table",
            ),
            numpy_helper.from_array(np.array([0, 0, SEGMENTS, types], np.int64), "head.tok_shape"),
            numpy_helper.from_array(np.array([1], np.int64), "head.ax1"),
            numpy_helper.from_array(np.array([2], np.int64), "head.ax2"),
            numpy_helper.from_array(np.array([3], np.int64), "head.ax3"),
            numpy_helper.from_array(np.array([1, 2], np.int64), "head.ax12"),
            scalar(2.0, "head.two", ()),
            scalar(float(EDGE_TOKENS + 1), "head.edge_first", ()),
            scalar(float(EDGE_TOKENS), "head.edge", ()),
        ]
    ends = heads.task_end_weights is not None
    if ends:
        inits.append(
            numpy_helper.from_array(np.asarray(heads.task_end_weights).astype(f32), "head.end_w")
        )
    hood = heads.neighbourhood_centroids is not None
    if hood:
        inits += [
            numpy_helper.from_array(
                np.ascontiguousarray(np.asarray(heads.neighbourhood_centroids).T).astype(f32),
                "head.nb_centroids_t",
            ),
            vec(np.asarray(heads.neighbourhood_gains), "head.nb_gains"),
            scalar(NEIGHBOURHOOD_TEMPERATURE, "head.nb_temperature", ()),
        ]
    n = helper.make_node

    def op(kind: str, inputs: list[str], out: str, **attrs: Any) -> onnx.NodeProto:
        return n(kind, inputs, [out], name=out, **attrs)

    nodes = [
        # task type
        op("MatMul", ["embedding", "head.task_w"], "head.task_mm"),
        op("Add", ["head.task_mm", "head.task_b"], "head.task_emb_logits"),
    ]
    task_logits = "head.task_emb_logits"
    if ends:
        nodes += [
            op("MatMul", [END_INPUT, "head.end_w"], "head.end_mm"),
            op("Add", [task_logits, "head.end_mm"], "head.task_end_logits"),
        ]
        task_logits = "head.task_end_logits"
    if heads.token_weights is not None:
        # Positions by running count of the mask (padding is at the end): c = 1 for [CLS],
        # c = len for [SEP]; the body is 2 <= c <= len - 1, its first / last EDGE_TOKENS
        # tokens c <= EDGE + 1 / c >= len - EDGE.
        nodes += [
            op("Cast", [HEAD_MASK], "head.mask_f", to=TensorProto.FLOAT),
            op("ReduceSum", ["head.mask_f", "head.ax1"], "head.len", keepdims=1),
            op("CumSum", ["head.mask_f", "head.ax1"], "head.cpos"),
            op("Sub", ["head.len", "head.one"], "head.len_m1"),
            op("Sub", ["head.len", "head.edge"], "head.len_me"),
            op("GreaterOrEqual", ["head.cpos", "head.two"], "head.ge2"),
            op("LessOrEqual", ["head.cpos", "head.len_m1"], "head.le_last"),
            op("And", ["head.ge2", "head.le_last"], "head.body_b"),
            op("Cast", ["head.body_b"], "head.body_raw", to=TensorProto.FLOAT),
            op("Mul", ["head.body_raw", "head.mask_f"], "head.seg_all"),
            op("LessOrEqual", ["head.cpos", "head.edge_first"], "head.first_b"),
            op("Cast", ["head.first_b"], "head.first_f", to=TensorProto.FLOAT),
            op("Mul", ["head.seg_all", "head.first_f"], "head.seg_first"),
            op("GreaterOrEqual", ["head.cpos", "head.len_me"], "head.last_b"),
            op("Cast", ["head.last_b"], "head.last_f", to=TensorProto.FLOAT),
            op("Mul", ["head.seg_all", "head.last_f"], "head.seg_last"),
        ]
        for seg in ("all", "first", "last"):
            nodes += [
                op("ReduceSum", [f"head.seg_{seg}", "head.ax1"], f"head.n_{seg}", keepdims=1),
                op("Max", [f"head.n_{seg}", "head.one"], f"head.nc_{seg}"),
                op("Div", [f"head.seg_{seg}", f"head.nc_{seg}"], f"head.w_{seg}"),
                op("Unsqueeze", [f"head.w_{seg}", "head.ax2"], f"head.w3_{seg}"),
            ]
        nodes += [
            op("Concat", ["head.w3_all", "head.w3_first", "head.w3_last"], "head.w3", axis=2),
            op("Unsqueeze", ["head.w3", "head.ax3"], "head.w4"),
            op("Gather", ["head.tok_table", HEAD_IDS], "head.tok_rows", axis=0),
            op("Reshape", ["head.tok_rows", "head.tok_shape"], "head.tok_4d"),
            op("Mul", ["head.tok_4d", "head.w4"], "head.tok_weighted"),
            op("ReduceSum", ["head.tok_weighted", "head.ax12"], "head.tok_logits", keepdims=0),
            op("Add", [task_logits, "head.tok_logits"], "head.task_logits"),
        ]
        task_logits = "head.task_logits"
    nodes += [
        op("Softmax", [task_logits], "task_probabilities", axis=1),
        # complexity
        op("MatMul", ["embedding", "head.cx_w"], "head.cx_mm"),
        op("Add", ["head.cx_mm", "head.cx_b"], "head.cx_raw"),
        op("Clip", ["head.cx_raw", "head.zero", "head.one"], "head.cx_2d"),
        op("Reshape", ["head.cx_2d", "head.flat"], "complexity"),
        # escalation: outcome score, weighted by trust
        op("Log", ["token_count"], "head.log_n"),
        op("MatMul", ["embedding", "head.out_w"], "head.out_mm"),
        op("Mul", ["head.log_n", "head.out_len_w"], "head.out_len"),
        op("Add", ["head.out_mm", "head.out_len"], "head.out_sum"),
        op("Add", ["head.out_sum", "head.out_b"], "head.out_2d"),
    ]
    outcome_2d = "head.out_2d"
    if hood:
        # the neighbourhood term: softmax over the clusters' similarity, times their gains
        nodes += [
            op("MatMul", ["embedding", "head.nb_centroids_t"], "head.nb_sims"),
            op("Mul", ["head.nb_sims", "head.nb_temperature"], "head.nb_logits"),
            op("Softmax", ["head.nb_logits"], "head.nb_weights", axis=1),
            op("MatMul", ["head.nb_weights", "head.nb_gains"], "head.nb_term"),
            op("Add", ["head.out_2d", "head.nb_term"], "head.out_nb"),
        ]
        outcome_2d = "head.out_nb"
    nodes += [
        op("Reshape", [outcome_2d, "head.flat"], "head.outcome"),
        op("MatMul", ["embedding", "head.centroids_t"], "head.sims"),
        op("ReduceMax", ["head.sims"], "head.sim", axes=[1], keepdims=0),
        op("Sub", ["head.sim", "head.sim_low"], "head.sim_shift"),
        op("Mul", ["head.sim_shift", "head.sim_inv_range"], "head.trust_raw"),
        op("Clip", ["head.trust_raw", "head.zero", "head.one"], "head.trust"),
        op("Mul", ["head.trust", "head.outcome"], "head.trusted"),
        # escalation: the part that transfers
        op("Mul", ["head.log_n", "head.tr_len_w"], "head.tr_len"),
        op("Mul", ["head.cx_2d", "head.tr_cx_w"], "head.tr_cx"),
        op("MatMul", ["task_probabilities", "head.tr_task_w"], "head.tr_task"),
        op("Add", ["head.tr_len", "head.tr_cx"], "head.tr_a"),
        op("Add", ["head.tr_a", "head.tr_task"], "head.tr_b"),
        op("Add", ["head.tr_b", "head.esc_b"], "head.tr_2d"),
        op("Reshape", ["head.tr_2d", "head.flat"], "head.transfer"),
        op("Add", ["head.trusted", "head.transfer"], "head.z"),
        op("Sigmoid", ["head.z"], "head.p"),
        # escalation = complexity + mix * (p - complexity)
        op("Sub", ["head.p", "complexity"], "head.delta"),
        op("Mul", ["head.mix", "head.delta"], "head.mixed"),
        op("Add", ["complexity", "head.mixed"], "escalation"),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier_heads",
        [
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", HIDDEN]),
            helper.make_tensor_value_info("token_count", TensorProto.FLOAT, ["batch", 1]),
        ]
        + (
            [helper.make_tensor_value_info(END_INPUT, TensorProto.FLOAT, ["batch", END_STATES])]
            if ends
            else []
        )
        + (
            []
            if heads.token_weights is None
            else [
                helper.make_tensor_value_info(HEAD_IDS, TensorProto.INT64, ["batch", "tokens"]),
                helper.make_tensor_value_info(HEAD_MASK, TensorProto.INT64, ["batch", "tokens"]),
            ]
        ),
        [
            helper.make_tensor_value_info(
                "task_probabilities", TensorProto.FLOAT, ["batch", types]
            ),
            helper.make_tensor_value_info("complexity", TensorProto.FLOAT, ["batch"]),
            helper.make_tensor_value_info("escalation", TensorProto.FLOAT, ["batch"]),
        ],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="switchyard-classifier"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
