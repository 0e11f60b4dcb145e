"""The three heads on top of the sentence embedding, fitted with scikit-learn, written as ONNX.

- task type: multinomial logistic regression, then temperature scaling fitted on a calibration
  split (so the probabilities mean what they say);
- complexity: ridge regression on the embedding, clipped to [0, 1];
- escalation: logistic regression on the embedding and log(token count), fitted on outcome
  records; blended towards the complexity score for prompts unlike the outcome data (cosine
  similarity to the nearest outcome-data centroid below ``sim_low`` gives the complexity score
  alone, above ``sim_high`` the outcome model alone, linear in between).
"""

from __future__ import annotations

from dataclasses import dataclass

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
    escalation_weights: np.ndarray  # [HIDDEN]
    escalation_length_weight: float  # on log(token count)
    escalation_bias: float
    centroids: np.ndarray  # [k, HIDDEN], unit length
    sim_low: float
    sim_high: float

    def predict(self, embedding: np.ndarray, token_count: np.ndarray) -> dict[str, np.ndarray]:
        """The heads in numpy (float64): the reference for the ONNX graph."""
        e = embedding.astype(np.float64)
        probs = softmax(e @ self.task_weights + self.task_bias)
        complexity = np.clip(e @ self.complexity_weights + self.complexity_bias, 0.0, 1.0)
        z = (
            e @ self.escalation_weights
            + np.log(token_count.reshape(-1)) * self.escalation_length_weight
            + self.escalation_bias
        )
        outcome_p = 1.0 / (1.0 + np.exp(-z))
        weight = np.clip(
            (self.similarity(e) - self.sim_low) / (self.sim_high - self.sim_low), 0.0, 1.0
        )
        return {
            "task_probabilities": probs,
            "complexity": complexity,
            "escalation": weight * outcome_p + (1.0 - weight) * complexity,
        }

    def similarity(self, embedding: np.ndarray) -> np.ndarray:
        return (embedding.astype(np.float64) @ self.centroids.T).max(axis=1)


def build_heads_graph(heads: Heads) -> onnx.ModelProto:
    f32 = np.float32
    inits = [
        numpy_helper.from_array(heads.task_weights.astype(f32), "head.task_w"),
        numpy_helper.from_array(heads.task_bias.astype(f32), "head.task_b"),
        numpy_helper.from_array(
            heads.complexity_weights.astype(f32).reshape(HIDDEN, 1), "head.cx_w"
        ),
        numpy_helper.from_array(np.array([heads.complexity_bias], f32), "head.cx_b"),
        numpy_helper.from_array(
            heads.escalation_weights.astype(f32).reshape(HIDDEN, 1), "head.esc_w"
        ),
        numpy_helper.from_array(np.array([heads.escalation_length_weight], f32), "head.esc_len_w"),
        numpy_helper.from_array(np.array([heads.escalation_bias], f32), "head.esc_b"),
        numpy_helper.from_array(
            np.ascontiguousarray(heads.centroids.T).astype(f32), "head.centroids_t"
        ),
        numpy_helper.from_array(np.array(heads.sim_low, f32), "head.sim_low"),
        numpy_helper.from_array(
            np.array(1.0 / (heads.sim_high - heads.sim_low), f32), "head.sim_inv_range"
        ),
        numpy_helper.from_array(np.array(0.0, f32), "head.zero"),
        numpy_helper.from_array(np.array(1.0, f32), "head.one"),
        numpy_helper.from_array(np.array([-1], np.int64), "head.flat"),
    ]
    n = helper.make_node
    nodes = [
        n("MatMul", ["embedding", "head.task_w"], ["head.task_mm"], name="head.task_mm"),
        n("Add", ["head.task_mm", "head.task_b"], ["head.task_logits"], name="head.task_logits"),
        n(
            "Softmax",
            ["head.task_logits"],
            ["task_probabilities"],
            name="task_probabilities",
            axis=1,
        ),
        n("MatMul", ["embedding", "head.cx_w"], ["head.cx_mm"], name="head.cx_mm"),
        n("Add", ["head.cx_mm", "head.cx_b"], ["head.cx_raw"], name="head.cx_raw"),
        n(
            "Clip",
            ["head.cx_raw", "head.zero", "head.one"],
            ["head.cx_clipped"],
            name="head.cx_clipped",
        ),
        n("Reshape", ["head.cx_clipped", "head.flat"], ["complexity"], name="complexity"),
        n("MatMul", ["embedding", "head.esc_w"], ["head.esc_mm"], name="head.esc_mm"),
        n("Log", ["token_count"], ["head.log_count"], name="head.log_count"),
        n("Mul", ["head.log_count", "head.esc_len_w"], ["head.esc_len"], name="head.esc_len"),
        n("Add", ["head.esc_mm", "head.esc_len"], ["head.esc_sum"], name="head.esc_sum"),
        n("Add", ["head.esc_sum", "head.esc_b"], ["head.esc_z"], name="head.esc_z"),
        n("Sigmoid", ["head.esc_z"], ["head.esc_p2d"], name="head.esc_p2d"),
        n("Reshape", ["head.esc_p2d", "head.flat"], ["head.esc_p"], name="head.esc_p"),
        n("MatMul", ["embedding", "head.centroids_t"], ["head.sims"], name="head.sims"),
        n("ReduceMax", ["head.sims"], ["head.sim"], name="head.sim", axes=[1], keepdims=0),
        n("Sub", ["head.sim", "head.sim_low"], ["head.sim_shift"], name="head.sim_shift"),
        n("Mul", ["head.sim_shift", "head.sim_inv_range"], ["head.w_raw"], name="head.w_raw"),
        n("Clip", ["head.w_raw", "head.zero", "head.one"], ["head.w"], name="head.w"),
        # escalation = complexity + w * (p - complexity)
        n("Sub", ["head.esc_p", "complexity"], ["head.esc_delta"], name="head.esc_delta"),
        n("Mul", ["head.w", "head.esc_delta"], ["head.esc_blend"], name="head.esc_blend"),
        n("Add", ["complexity", "head.esc_blend"], ["escalation"], name="escalation"),
    ]
    types = heads.task_bias.shape[0]
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
