"""Prompts from sources the model never trains on, labelled by hand for evaluation only.

``arena_hard_v0.1`` (hard real-user prompts) and ``self_instruct_user_oriented`` (expert-written
instructions for real apps) have no task-type labels in the datasets, so the build never uses
them for the task head (arena-hard only anchors complexity). A random sample of 90 of them
(seed 7) was read and labelled here by the project where one task type clearly fits; ambiguous
prompts were left out. The model card reports accuracy on these as the unseen-source check.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["UNSEEN_LABELS"]

UNSEEN_LABELS: Mapping[str, str] = {
    # arena_hard_v0.1
    "arena_hard_v0.1/e86055eee1b94b3084ad15e06ca0dc36": "creative_writing",
    "arena_hard_v0.1/ba51d695050d4c2fb9de4961b70eea97": "code_generation",
    "arena_hard_v0.1/b4b1c3f799f6459b8cfb15fa27e399e7": "code_generation",
    "arena_hard_v0.1/9db47b0594014729b777c10678597e7f": "code_generation",
    "arena_hard_v0.1/6c125f929f4344f98dc9a0f302986161": "code_generation",
    "arena_hard_v0.1/24db76a79ef84b4dbc5c87190e5a80d5": "chat",
    "arena_hard_v0.1/db60d25a509f454b878cc2c5371d5f6f": "code_generation",
    "arena_hard_v0.1/77fd22f6615549cc8ddd2fdd56e80cd1": "math",
    "arena_hard_v0.1/dbff049f35b142249c18d8faebe84039": "code_generation",
    "arena_hard_v0.1/32fe1f72b6804972b046b0ad91e64858": "code_generation",
    "arena_hard_v0.1/69120423cec04acca9f2b8d5f68b391c": "code_generation",
    "arena_hard_v0.1/f713060ea00c4486b3b24fc2b0481350": "code_generation",
    "arena_hard_v0.1/fd64e8bac19e4e56b194599b3ba17ec1": "chat",
    "arena_hard_v0.1/dbe8eb9a8f2a48bcb8ff302141cfdd77": "code_generation",
    "arena_hard_v0.1/60856d87b3484a4db45a67ac560a2b06": "code_review",
    "arena_hard_v0.1/33166da9898f40b6aff3fa8d988dae7a": "math",
    "arena_hard_v0.1/7d834677d98d4773a0c2217d5b3f43ee": "code_generation",
    "arena_hard_v0.1/815c08241cb449faab132ded2e4db1b6": "code_generation",
    "arena_hard_v0.1/08d2f41143ff411c83c02a521eb01948": "code_generation",
    "arena_hard_v0.1/31615ee9cc8448cd9d225bdb87a5ffdc": "code_generation",
    "arena_hard_v0.1/4ae5aa6ddd4a4a54a0c5ab32ca7d94be": "code_generation",
    "arena_hard_v0.1/fae4f754f12f40db8178d3683eb1eddc": "code_generation",
    "arena_hard_v0.1/479edf88937c4d2f9b45025399fc27ac": "code_generation",
    "arena_hard_v0.1/3bd60ed6975743f7833c43fbfc74fd6f": "code_review",
    "arena_hard_v0.1/c30665aaed7e481cb5f244c04058c34e": "code_generation",
    # self_instruct_user_oriented
    "self_instruct_user_oriented/user_oriented_task_138": "chat",
    "self_instruct_user_oriented/user_oriented_task_30": "chat",
    "self_instruct_user_oriented/user_oriented_task_143": "math",
    "self_instruct_user_oriented/user_oriented_task_208": "creative_writing",
    "self_instruct_user_oriented/user_oriented_task_46": "chat",
    "self_instruct_user_oriented/user_oriented_task_26": "chat",
    "self_instruct_user_oriented/user_oriented_task_249": "creative_writing",
    "self_instruct_user_oriented/user_oriented_task_163": "classification",
    "self_instruct_user_oriented/user_oriented_task_48": "chat",
    "self_instruct_user_oriented/user_oriented_task_24": "creative_writing",
    "self_instruct_user_oriented/user_oriented_task_140": "math",
    "self_instruct_user_oriented/user_oriented_task_144": "math",
    "self_instruct_user_oriented/user_oriented_task_158": "classification",
    "self_instruct_user_oriented/user_oriented_task_127": "extraction",
    "self_instruct_user_oriented/user_oriented_task_62": "creative_writing",
    "self_instruct_user_oriented/user_oriented_task_116": "chat",
    "self_instruct_user_oriented/user_oriented_task_203": "chat",
    "self_instruct_user_oriented/user_oriented_task_244": "classification",
    "self_instruct_user_oriented/user_oriented_task_134": "reasoning",
    "self_instruct_user_oriented/user_oriented_task_126": "chat",
    "self_instruct_user_oriented/user_oriented_task_87": "chat",
    "self_instruct_user_oriented/user_oriented_task_149": "math",
}
