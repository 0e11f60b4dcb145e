# ruff: noqa: E501  (prompt text and code snippets are data; wrapping them would change them)
"""Prompts written by the project for formats the public datasets do not have (classifier v2).

The datasets have no greetings or chit-chat, no multi-turn follow-ups (the router classifies the
last user turn, so "now do it in rust" arrives alone), few plain requests to explain a STEM
topic, few proof requests, and no "this function is wrong, fix it" asks about short snippets.
Each prompt below was written by hand for this project (no template, no filler); every row says
it is ours (id ``authored/everyday_<kind>/<n>``) and each prompt is its own split group, like the
user-voice prompts in ``voices.py``. Complexity targets are the author's judgement.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from switchyard.training.authored import AuthoredPrompt

__all__ = ["EVERYDAY_PROMPTS", "everyday_prompts", "prompts_by_kind"]

# kind -> (task type, complexity target, prompts)
EVERYDAY_PROMPTS: Mapping[str, tuple[str, float, tuple[str, ...]]] = {
    # Greetings, thanks and small talk: chat, and as easy as a request gets.
    "greeting": (
        "chat",
        0.02,
        (
            "hello",
            "hi",
            "hey",
            "hi there!",
            "Hello!",
            "good morning",
            "good evening :)",
            "yo",
            "hey, how are you?",
            "how's it going",
            "thanks!",
            "thank you so much",
            "ok thanks",
            "cool, thanks",
            "bye",
            "see you later",
            "what's up",
            "hiya",
            "Good afternoon.",
            "hello, are you there?",
            "test",
            "ping",
            "Hi! Who are you?",
            "what can you do?",
            "are you a bot",
            "lol",
            "nice",
            "great, that worked",
            "sorry, ignore that",
            "ok",
            "hmm",
            "good night",
            "happy friday!",
            "merry christmas",
            "how was your day",
            "I'm bored",
            "tell me something interesting",
            "do you have a name?",
            "nice to meet you",
            "thx",
        ),
    ),
    # Short follow-ups as the last turn of a conversation, labelled by what they ask for.
    "followup_chat": (
        "chat",
        0.10,
        (
            "why?",
            "can you explain that again more simply?",
            "what do you mean by that?",
            "and what about the second option?",
            "which one would you pick?",
            "are you sure?",
            "ok, and then what?",
            "give me more detail on step 3",
            "what are the downsides?",
            "can you give an example?",
            "is that still true in 2024?",
            "how long would that take?",
            "what if I don't have an oven?",
            "any cheaper alternatives?",
            "tell me more",
        ),
    ),
    "followup_code": (
        "code_generation",
        0.30,
        (
            "now do it in rust",
            "can you rewrite that in typescript?",
            "add error handling to it",
            "make it async",
            "now add a unit test for that function",
            "can you make it read the file name from the command line instead?",
            "same thing but in bash please",
            "add type hints",
            "and now write the SQL for it",
            "make it work with a list of urls instead of one",
        ),
    ),
    "followup_review": (
        "code_review",
        0.35,
        (
            "that still throws an IndexError on the last line, what's wrong?",
            "your code doesn't compile: error[E0382]: borrow of moved value",
            "it returns None when the list is empty, can you fix that?",
            "this version is slower than the first one, why?",
            "the test still fails with AssertionError: 3 != 4",
        ),
    ),
    "followup_summary": (
        "summarization",
        0.15,
        (
            "shorter please",
            "can you make that a 2 sentence summary?",
            "tl;dr?",
            "sum that up in three bullet points",
            "give me the short version",
        ),
    ),
    "followup_creative": (
        "creative_writing",
        0.25,
        (
            "make it rhyme",
            "now write a second verse",
            "make the ending sadder",
            "rewrite it as a limerick",
            "make it funnier and add a dog",
        ),
    ),
    "followup_math": (
        "math",
        0.30,
        (
            "what if the rate is 5% instead?",
            "now solve it for x = 3",
            "and what's the derivative of that?",
            "how did you get 42 in the second step?",
            "now do the same for n = 10",
        ),
    ),
    # Requests to explain a science topic: science, not chat.
    "explain_science": (
        "science",
        0.35,
        (
            "explain how photosynthesis works",
            "why does ice float on water?",
            "how do vaccines train the immune system?",
            "what is the difference between mitosis and meiosis",
            "can you explain entropy like I'm a first year student",
            "how does a transistor work?",
            "why do heavier atoms have more neutrons than protons",
            "explain the krebs cycle step by step",
            "what actually happens in a nuclear fission reaction",
            "How do black holes form?",
            "why is the speed of light the same for every observer",
            "explain what a covalent bond is and how it differs from an ionic bond",
            "how does CRISPR cut DNA?",
            "what causes the seasons on earth",
            "Explain the doppler effect with an example",
            "how do enzymes lower activation energy",
            "what is quantum entanglement in plain terms",
            "why does salt melt ice on roads",
            "how do neurons send signals",
            "Describe the structure of an atom and the role of electrons in chemical reactions.",
            "what's the difference between DNA and RNA",
            "how does the greenhouse effect work",
            "Explain Le Chatelier's principle.",
            "why do we have tides?",
            "how does an electric motor turn electricity into motion",
            "what is a buffer solution and why does it resist pH change",
            "how do antibiotics kill bacteria but not our cells",
            "explain plate tectonics",
            "what is the role of ATP in cells",
            "why does a spinning top not fall over",
        ),
    ),
    # Proofs and "show that" requests: math.
    "proof": (
        "math",
        0.80,
        (
            "prove that there are infinitely many primes",
            "Show that the square root of 2 is irrational.",
            "prove that every finite integral domain is a field",
            "Prove that a group of prime order is cyclic.",
            "show that the sum of the first n odd numbers is n^2 by induction",
            "prove that Z[i] is a Euclidean domain",
            "Prove that every convergent sequence is bounded.",
            "show that the composition of two injective functions is injective",
            "prove that the kernel of a ring homomorphism is an ideal",
            "Prove that a continuous function on [a, b] attains its maximum.",
            "prove that sqrt(3) + sqrt(5) is irrational",
            "show that every subgroup of a cyclic group is cyclic",
            "prove the triangle inequality for complex numbers",
            "Prove that the determinant of a product is the product of the determinants.",
            "show that x^2 + 1 is irreducible over the reals",
        ),
    ),
    # A short function and a complaint: code review (find and fix the bug).
    "fix_function": (
        "code_review",
        0.35,
        (
            "this is supposed to return the largest number but it returns the smallest\n\ndef largest(xs):\n    best = xs[0]\n    for x in xs:\n        if x < best:\n            best = x\n    return best",
            "fix this function\n\nfunction isEven(n) {\n  return n % 2 == 1;\n}",
            "why does this loop forever?\n\ni = 0\nwhile i < 10:\n    print(i)",
            "def factorial(n):\n    if n == 0:\n        return 0\n    return n * factorial(n - 1)\n\nthis gives 0 for everything, what's the bug",
            "My C code crashes:\n\nint sum(int *a, int n) {\n  int s = 0;\n  for (int i = 0; i <= n; i++) s += a[i];\n  return s;\n}\nwhat is wrong?",
            "Fix the bug in this function:\n\ndef average(nums):\n    return sum(nums) / len(nums) + 1",
            "public static boolean contains(int[] a, int x) {\n    for (int i = 1; i < a.length; i++) if (a[i] == x) return true;\n    return false;\n}\n// misses some values, why?",
            "can you find what's wrong here? it never removes anything\n\ndef remove_all(xs, v):\n    for x in xs:\n        if x == v:\n            xs.remove(v)\n    return xs",
            "def is_palindrome(s):\n    return s == s.reverse()\n\nAttributeError: 'str' object has no attribute 'reverse'. fix?",
            "This Go function sometimes returns the wrong answer, help me fix it:\n\nfunc max(a, b int) int {\n\tif a > b {\n\t\treturn b\n\t}\n\treturn a\n}",
            "SELECT name, COUNT(*) FROM orders WHERE COUNT(*) > 5 GROUP BY name;\n\nthis query errors, what did I do wrong",
            "why does this print undefined?\n\nconst nums = [1, 2, 3];\nconst doubled = nums.map(n => { n * 2 });\nconsole.log(doubled[0]);",
            "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a = b\n        b = a + b\n    return a\n\nfib(5) should be 5 but I get 16. find the bug",
            "Please fix this Rust function:\n\nfn first_word(s: &String) -> &str {\n    let bytes = s.as_bytes();\n    for (i, &c) in bytes.iter().enumerate() {\n        if c == b' ' { return &s[0..i+1]; }\n    }\n    &s[..]\n}",
            "my binary search never finds the last element\n\ndef search(a, x):\n    lo, hi = 0, len(a) - 1\n    while lo < hi:\n        mid = (lo + hi) // 2\n        if a[mid] < x:\n            lo = mid + 1\n        else:\n            hi = mid\n    return lo if a[lo] == x else -1",
            "what's the bug?\n\nfor (let i = 0; i < 3; i++) {\n  setTimeout(() => console.log(i), 0);\n}\n// with var instead of let it prints 3 3 3, explain and fix",
            "This counts words wrong when there are two spaces between words:\n\ndef count_words(s):\n    return len(s.split(' '))",
            "Debug this: dividing by the length gives ZeroDivisionError on an empty list\n\ndef mean(xs):\n    return sum(xs) / len(xs)",
            "def merge(a, b):\n    out = []\n    i = j = 0\n    while i < len(a) and j < len(b):\n        if a[i] < b[j]:\n            out.append(a[i]); i += 1\n        else:\n            out.append(b[j]); j += 1\n    return out\n\nsome elements go missing. why",
            'the if never runs:\n\nif (x = 5) {\n  printf("five");\n}\n\nwhat am i doing wrong',
        ),
    ),
}


def prompts_by_kind(
    table: Mapping[str, tuple[str, float, tuple[str, ...]]], prefix: str
) -> Iterator[AuthoredPrompt]:
    """A kind -> (task type, complexity, prompts) table's prompts in a fixed order (kinds sorted):
    id ``authored/<prefix><kind>/<n>``, each prompt its own split group."""
    for kind in sorted(table):
        task, complexity, prompts = table[kind]
        for index, text in enumerate(prompts):
            group = f"authored/{prefix}{kind}/{index}"
            yield AuthoredPrompt(
                id=group, prompt=text, task_type=task, complexity=complexity, group=group
            )


def everyday_prompts() -> Iterator[AuthoredPrompt]:
    """The prompts above in a fixed order; each prompt is its own split group."""
    return prompts_by_kind(EVERYDAY_PROMPTS, "everyday_")
