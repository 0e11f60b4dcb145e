# ruff: noqa: E501  (prompt text and code snippets are data; wrapping them would change them)
"""Prompts written by the project for task types the public datasets barely cover.

The prompt datasets have 19 real creative-writing prompts, only templated summarisation /
extraction / classification prompts, no conversational advice, and no review of real code diffs.
This module fills those gaps with prompts written here: each *template* below is combined with
topic fillers. Every authored row says so (its id starts with ``authored/``), and its split group
is its template, so held-out authored rows come from templates never seen in training.
Complexity targets are the author's judgement, stated per template.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["AuthoredPrompt", "authored_prompts"]


@dataclass(frozen=True, slots=True)
class AuthoredPrompt:
    id: str
    prompt: str
    task_type: str
    complexity: float
    group: str


_TOPICS = [
    "a lighthouse keeper",
    "a lost dog",
    "the first day of autumn",
    "a city at night",
    "an old violin",
    "a robot learning to cook",
    "a grandmother's garden",
    "a train journey",
    "the ocean",
    "a forgotten letter",
    "a small bakery",
    "winter in the mountains",
    "a chess match",
    "a space station",
    "a rainy Monday",
    "friendship",
    "a haunted library",
    "the last bookstore in town",
    "a beekeeper",
    "a marathon runner",
    "a time traveller",
    "a desert caravan",
    "moving to a new country",
    "a jazz musician",
    "an abandoned fairground",
]
_SUBJECTS = [
    "my sleep schedule",
    "learning Spanish",
    "saving for a house",
    "my first job interview",
    "a conflict with my roommate",
    "starting to run",
    "keeping houseplants alive",
    "planning a trip to Japan",
    "negotiating a salary",
    "eating healthier on a budget",
    "choosing a laptop",
    "public speaking nerves",
    "a long-distance friendship",
    "getting back into reading",
    "hosting a dinner party",
    "adopting a cat",
    "working from home",
    "writing a wedding toast",
    "picking a university course",
    "dealing with procrastination",
]
_PASSAGES = [
    "The city council met on Tuesday to discuss the new bike lane network. Supporters said the "
    "lanes would cut traffic and improve safety, while several shop owners worried about losing "
    "parking spaces. After three hours of debate, the council voted 7 to 4 to approve a pilot on "
    "two main streets starting in March, with a review of accident and sales data after a year.",
    "Our Q3 revenue grew 12% year over year to $4.2 million, driven mainly by the enterprise "
    "plan. Churn fell from 3.1% to 2.4%. Hiring was slower than planned: we added 6 engineers "
    "against a target of 10. For Q4 we will focus on the EU launch, scheduled for November 15, "
    "and on reducing onboarding time, which customers still rate as our weakest area.",
    "Dear team, the office will be closed on Friday, June 7 for maintenance of the electrical "
    "system. Please take your laptops home on Thursday. The VPN will stay available. If you need "
    "access to the lab, contact Maria Lopez (maria.lopez@example.com) before Wednesday noon.",
    "Researchers at a university in Denmark tracked 2,000 adults for ten years and found that "
    "those who walked at least 7,000 steps a day had a 40% lower risk of heart disease. The "
    "effect held after adjusting for diet and smoking, but the authors caution that the study "
    "was observational and cannot prove that walking itself caused the difference.",
    "Patient: John Reed, 54. Complaint: chest tightness after climbing stairs for two weeks. "
    "History: hypertension, treated with lisinopril 10 mg. Smoker, 20 cigarettes a day. "
    "Exam: BP 150/95, pulse 88. Plan: ECG, lipid panel, stress test on May 3; advised to stop "
    "smoking; follow-up in two weeks.",
    "The new phone has a 6.1-inch screen, 128 GB of storage and a battery that lasted about 20 "
    "hours in our tests. The camera is excellent in daylight but struggles in low light. At "
    "$799 it costs $100 more than last year's model, and the charger is no longer in the box.",
    "Meeting notes, April 2: Alex will finish the API migration by April 12. Priya owns the "
    "customer survey and will share results next Monday. We agreed to drop the legacy export "
    "feature. Open question: whether to move the release from April 20 to April 27; Sam will "
    "check with the support team and decide by Friday.",
    "The Treaty of Westphalia, signed in 1648, ended the Thirty Years' War in the Holy Roman "
    "Empire and the Eighty Years' War between Spain and the Dutch Republic. It is often credited "
    "with establishing the principle of state sovereignty, although historians debate how much "
    "the treaties themselves changed political practice at the time.",
]
_SNIPPETS = [
    (
        "python",
        "def average(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)\n",
    ),
    (
        "javascript",
        "function getUser(id) {\n  fetch('/api/users/' + id).then(r => r.json()).then(u => { return u; });\n}\n",
    ),
    (
        "go",
        "func readConfig(path string) Config {\n\tdata, _ := os.ReadFile(path)\n\tvar c Config\n\tjson.Unmarshal(data, &c)\n\treturn c\n}\n",
    ),
    (
        "java",
        "public int find(List<Integer> xs, int t) {\n    for (int i = 0; i <= xs.size(); i++) {\n        if (xs.get(i) == t) return i;\n    }\n    return -1;\n}\n",
    ),
    ("sql", "SELECT * FROM orders o, customers c WHERE o.total > 100 ORDER BY o.created_at;\n"),
    (
        "python",
        "import threading\ncounter = 0\ndef work():\n    global counter\n    for _ in range(100000):\n        counter += 1\n",
    ),
    (
        "rust",
        "fn first_word(s: &String) -> &str {\n    let bytes = s.as_bytes();\n    for (i, &b) in bytes.iter().enumerate() {\n        if b == b' ' { return &s[0..i]; }\n    }\n    &s[..]\n}\n",
    ),
    (
        "typescript",
        "async function save(items: Item[]) {\n  items.forEach(async (item) => {\n    await db.insert(item);\n  });\n  console.log('saved');\n}\n",
    ),
    (
        "c",
        "char *copy(const char *s) {\n    char *out = malloc(strlen(s));\n    strcpy(out, s);\n    return out;\n}\n",
    ),
]
_DIFF = "--- a/{name}\n+++ b/{name}\n@@ -10,7 +10,9 @@\n{body}"
_CODE_TASKS = [
    "a REST endpoint that returns paginated search results",
    "a function that validates email addresses",
    "a CLI tool that renames files by date",
    "a rate limiter using a token bucket",
    "a React component for a sortable table",
    "a script that backs up a PostgreSQL database nightly",
    "a binary search tree with insert and delete",
    "an LRU cache",
    "a CSV to JSON converter",
    "a retry decorator with exponential backoff",
    "a websocket chat server",
    "a function that merges overlapping intervals",
    "a Dockerfile for a Flask app",
    "a GitHub Actions workflow that runs tests on every push",
    "a parser for simple arithmetic expressions",
]
_LANGS = ["Go", "Rust", "TypeScript", "Java", "C#", "Kotlin", "Bash", "SQL", "C++", "Ruby"]
_LABEL_SETS = [
    (
        "support ticket",
        "billing, technical issue, account access, feature request",
        [
            "I was charged twice for my subscription this month.",
            "The app crashes every time I open settings.",
            "I can't log in since I changed my phone number.",
            "It would be great if I could export reports to Excel.",
        ],
    ),
    (
        "customer review",
        "positive, negative, neutral",
        [
            "The delivery was late and the box was damaged.",
            "Absolutely love it, works exactly as described!",
            "It's okay. Does the job, nothing special.",
            "Worst purchase I've made this year.",
        ],
    ),
    (
        "email",
        "spam, personal, work, promotion",
        [
            "Congratulations! You've won a $500 gift card, click here to claim.",
            "Hi Mom, we'll arrive Saturday around noon.",
            "Please review the attached budget before tomorrow's meeting.",
            "50% off all shoes this weekend only.",
        ],
    ),
    (
        "news headline",
        "politics, sports, technology, business, health",
        [
            "Parliament passes new data privacy law",
            "Local team wins championship after 30 years",
            "Chipmaker shares jump on record demand",
            "New study links sleep to memory",
        ],
    ),
    (
        "tweet",
        "joy, anger, sadness, fear, surprise",
        [
            "Can't believe they cancelled my flight AGAIN.",
            "Just got engaged!!!",
            "Missing my grandpa today.",
            "Wait, the exam is TOMORROW?",
        ],
    ),
]

_OPS = [
    "read a CSV file and print each row",
    "parse JSON from an HTTP response",
    "reverse a string",
    "connect to a PostgreSQL database and run a query",
    "find duplicates in a list",
    "plot a histogram of some numbers",
    "send an email with an attachment",
    "resize an image",
    "sort a dictionary by value",
    "call a REST API with retries",
    "compute a moving average",
    "watch a directory for new files",
    "hash a password securely",
    "generate random passwords",
    "deep-copy a nested object",
    "debounce a function",
    "read environment variables with defaults",
    "run a task every hour",
    "zip a folder",
    "upload a file to S3",
    "validate a phone number",
    "count word frequencies in a text file",
    "merge two sorted arrays",
    "download a web page",
    "build a simple HTTP server",
    "convert a date string to a timestamp",
]
_RECS = [
    "a good book about the history of science",
    "a movie for a rainy evening",
    "a quick vegetarian dinner",
    "a podcast about economics",
    "places to visit in Portugal",
    "a board game for four players",
    "stretches for lower back pain",
    "a gift for my dad",
    "a beginner-friendly hiking trail near Denver",
    "a laptop for a student under $800",
    "ways to make new friends in a new city",
    "a weekend itinerary for Rome",
]
_PRODUCTS = [
    "a reusable water bottle",
    "a meditation app",
    "an electric bike",
    "a coffee subscription",
    "a handmade candle shop",
    "a language-learning game",
    "noise-cancelling headphones",
    "a vegan bakery",
    "a budgeting app for students",
    "a smart plant pot",
]

_TEMPLATES: list[tuple[str, str, float, list[str]]] = [
    # (group, task type, complexity, templates with {x})
    (
        "creative_story",
        "creative_writing",
        0.40,
        [
            "Write a short story about {x}.",
            "Tell me a bedtime story about {x} for a six-year-old.",
            "Write a 500-word science fiction story featuring {x}, with a twist ending.",
            "Write flash fiction (under 200 words) about {x}.",
        ],
    ),
    (
        "creative_poem",
        "creative_writing",
        0.35,
        [
            "Write a poem about {x}.",
            "Compose a haiku about {x}.",
            "Write a sonnet about {x}.",
            "Write song lyrics with a chorus about {x}.",
            "Write a limerick about {x}.",
        ],
    ),
    (
        "creative_misc",
        "creative_writing",
        0.35,
        [
            "Brainstorm ten creative names for a podcast about {x}.",
            "Write the opening paragraph of a novel about {x}.",
            "Write a funny dialogue between two characters about {x}.",
            "Give me five creative writing prompts inspired by {x}.",
            "Write a toast for a party themed around {x}.",
        ],
    ),
    (
        "chat_advice",
        "chat",
        0.25,
        [
            "Can you give me some advice on {s}?",
            "I'm struggling with {s}. Any tips?",
            "What's a good way to approach {s}?",
            "My friend asked me about {s} and I didn't know what to say. What would you suggest?",
        ],
    ),
    (
        "chat_explain",
        "chat",
        0.20,
        [
            "Hey! Quick question about {s}: where should I even start?",
            "What are the pros and cons of different approaches to {s}?",
            "I'd love your honest opinion on {s}.",
            "Let's chat about {s}. What do most people get wrong?",
        ],
    ),
    (
        "summ_request",
        "summarization",
        0.25,
        [
            "Summarize the following text in two sentences:\n\n{p}",
            "TL;DR this for me please:\n{p}",
            "Give me the key points of this in bullet form:\n\n{p}",
            "Can you condense this into one line?\n\n{p}",
        ],
    ),
    (
        "summ_audience",
        "summarization",
        0.30,
        [
            "Write a short summary of this for a busy executive:\n\n{p}",
            "Summarise the text below for a ten-year-old.\n\n{p}",
            "{p}\n\nSummarize the above in plain language.",
        ],
    ),
    (
        "extract_fields",
        "extraction",
        0.25,
        [
            "Extract all dates and names from the following text and return them as JSON:\n\n{p}",
            "From the text below, list every number and what it refers to.\n\n{p}",
            "{p}\n\nPull out the action items and their owners as a table.",
        ],
    ),
    (
        "extract_qa",
        "extraction",
        0.25,
        [
            "Read the passage and answer using only information from it: who is responsible for what?\n\n{p}",
            "Based only on this text, what decision was made and when?\n\n{p}",
            "{p}\n\nAccording to the passage above, what are the exact figures mentioned?",
        ],
    ),
    (
        "classify_label",
        "classification",
        0.15,
        [
            "Classify this {k} into one of: {labels}.\n\n{t}",
            'Which category does this {k} belong to ({labels})? "{t}"',
            "Label the sentiment / category of the following {k}. Options: {labels}.\nText: {t}",
        ],
    ),
    (
        "review_snippet",
        "code_review",
        0.45,
        [
            "Review this {lang} code and point out any bugs:\n\n```{lang}\n{c}```",
            "Why doesn't this work?\n\n{c}",
            "Can you do a code review of the following {lang} function? Focus on correctness and edge cases.\n\n{c}",
            "Find and fix the bug in this {lang} snippet:\n{c}",
        ],
    ),
    (
        "review_diff",
        "code_review",
        0.50,
        [
            "Please review this diff before I merge it:\n\n{d}",
            "Is this patch safe? Any issues?\n\n{d}",
            "Give me code review comments for this pull request:\n\n{d}",
        ],
    ),
    (
        "codegen_howto",
        "code_generation",
        0.35,
        [
            "How do I {op} in {l}?",
            "Show me {l} code to {op}.",
            "Can you write a {l} script that can {op}?",
            "I need a function in {l} to {op}. Please include comments.",
            "What's the cleanest way to {op} with {l}? Give me the code.",
            "write code to {op}",
            "Give me an example of how to {op} in {l}.",
        ],
    ),
    (
        "chat_recommend",
        "chat",
        0.20,
        [
            "Can you recommend {rec}?",
            "I'm looking for {rec}. Any suggestions?",
            "What would you suggest for {rec}?",
            "Recommend {rec} and tell me why.",
        ],
    ),
    (
        "chat_howto",
        "chat",
        0.20,
        [
            "How can I get better at {s}?",
            "What should I know before {s}?",
            "Give me a step-by-step plan for {s}.",
            "Explain the basics of {s} like I'm a beginner.",
        ],
    ),
    (
        "creative_marketing",
        "creative_writing",
        0.30,
        [
            "Write a product description for {prod}.",
            "Come up with a catchy slogan for {prod}.",
            "Write an Instagram caption announcing {prod}.",
            "Suggest ten creative names for {prod}.",
            "Write a short, funny ad script for {prod}.",
        ],
    ),
    (
        "codegen_lang",
        "code_generation",
        0.45,
        [
            "Write {task} in {l}.",
            "Implement {task} using {l}, with unit tests.",
            "Can you show me how to build {task} in {l}?",
            "Generate {l} code for {task}.",
        ],
    ),
]


def authored_prompts(seed: int = 20240601, per_template: int = 12) -> Iterator[AuthoredPrompt]:
    """The authored prompts, deterministically (fixed seed, fixed order)."""
    rng = random.Random(seed)
    count = 0
    for group, task, complexity, templates in _TEMPLATES:
        for t_index, template in enumerate(templates):
            for _ in range(per_template):
                lang, code = rng.choice(_SNIPPETS)
                kind, labels, texts = rng.choice(_LABEL_SETS)
                body = "".join(
                    ("-" if i == 0 else "+") + line + "\n"
                    for i, line in enumerate(code.splitlines()[:3])
                )
                text = template.format(
                    x=rng.choice(_TOPICS),
                    s=rng.choice(_SUBJECTS),
                    p=rng.choice(_PASSAGES),
                    k=kind,
                    labels=labels,
                    t=rng.choice(texts),
                    lang=lang,
                    c=code,
                    d=_DIFF.format(name=f"src/module.{lang[:2]}", body=body),
                    task=rng.choice(_CODE_TASKS),
                    l=rng.choice(_LANGS),
                    op=rng.choice(_OPS),
                    rec=rng.choice(_RECS),
                    prod=rng.choice(_PRODUCTS),
                )
                count += 1
                yield AuthoredPrompt(
                    id=f"authored/{group}/{t_index}/{count}",
                    prompt=text,
                    task_type=task,
                    complexity=complexity,
                    group=f"authored/{group}/{t_index}",
                )
