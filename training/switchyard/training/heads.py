"""The three heads on top of the sentence embedding, fitted with scikit-learn, written as ONNX.

- task type: multinomial logistic regression, then temperature scaling fitted on a calibration
  split (so the probabilities mean what they say);
- complexity: ridge regression on the embedding, clipped to [0, 1];
- escalation (``escalation.py`` fits it): P = sigmoid(z) with
  z = trust * outcome score + transfer weights . [log tokens, complexity, task probabilities]
  + bias, where the outcome score is a linear model of [embedding, log tokens] learned from
  outcome records and trust (0..1) is how like the outcome data the prompt is (cosine
  similarity to the nearest outcome-data centroid, 0 at or below ``sim_low``, 1 at or above
  ``sim_high``). A model built without outcome records (``outcome_mix`` 0) reports the
  complexity score as its escalation score.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from switchyard.training.encoder import HIDDEN, IR_VERSION, OPSET

__all__ = ["Heads", "build_heads_graph", "softmax"]


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

    def predict(self, embedding: np.ndarray, token_count: np.ndarray) -> dict[str, np.ndarray]:
        """The heads in numpy (float64): the reference for the ONNX graph."""
        e = embedding.astype(np.float64)
        log_n = np.log(token_count.reshape(-1).astype(np.float64))
        probs = softmax(e @ self.task_weights + self.task_bias)
        complexity = np.clip(e @ self.complexity_weights + self.complexity_bias, 0.0, 1.0)
        outcome = e @ self.outcome_weights + log_n * self.outcome_length_weight + self.outcome_bias
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
    n = helper.make_node

    def op(kind: str, inputs: list[str], out: str, **attrs: Any) -> onnx.NodeProto:
        return n(kind, inputs, [out], name=out, **attrs)

    nodes = [
        # task type
        op("MatMul", ["embedding", "head.task_w"], "head.task_mm"),
        op("Add", ["head.task_mm", "head.task_b"], "head.task_logits"),
        op("Softmax", ["head.task_logits"], "task_probabilities", axis=1),
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
        op("Reshape", ["head.out_2d", "head.flat"], "head.outcome"),
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
        ],
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
