# ruff: noqa: E501  (prompt text and code snippets are data; wrapping them would change them)
"""A second source for formats the task head learned from one source only (classifier v2.1).

Leave-source-out validation of v2 showed whole formats that exist in one source only and are
missed when it is left out: requests to explain a science topic (``everyday.py`` only, 0.03),
logic puzzles asked in plain words (BIG-Bench Hard's layout only, 0.09), humanities and
social-science questions (MMLU only, 0.04 as chat), "write a function that ..." about a
numeric task in plain words (MBPP only: read as math, 0.51), a passage and a question about it
in a user's words (P3 templates only: 0.04 / 0.15), and multiple-choice science questions
outside MMLU's layout. Each kind below is a second, independent source for one of them, so the
head must learn the task from two sources that differ in wording and layout.

Each prompt was written by hand for this project (no template, no filler) after reading the
issue's list of misses, the v2 model card and the misses of unseen-source sets 1 and 2 (so they
are not blind to those sets' formats; none copies a prompt of any evaluation set, checked by
6-word shingles, and set 3, ``unseen_ours.jsonl``, was written first, by the same author). Every
row says it is ours (id ``authored/second_<kind>/<n>``), is its own split group and its own
source per kind; labels follow the taxonomy's definitions and the MMLU subject table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from switchyard.training.authored import AuthoredPrompt
from switchyard.training.everyday import prompts_by_kind

__all__ = ["SECOND_SOURCE_PROMPTS", "second_source_prompts"]

# kind -> (task type, complexity target, prompts)
SECOND_SOURCE_PROMPTS: Mapping[str, tuple[str, float, tuple[str, ...]]] = {
    # Explain a natural-science or medical topic (science), asked the way people ask.
    "explain_science": (
        "science",
        0.45,
        (
            "how do black holes form? and why can't light escape them",
            "Can someone explain what a p-value actually measures in a clinical trial?",
            "why do antibiotics not work against viruses",
            "Explain how the kidneys filter blood, at the level of a first-year medical student.",
            "what is the difference between an exothermic and an endothermic reaction, with examples",
            "How does photosynthesis turn light into chemical energy? Walk me through the light reactions.",
            "I never understood plate tectonics. What drives the plates to move?",
            "Explain superconductivity like I'm an engineering undergrad.",
            "what happens in the brain during REM sleep",
            "How do transistors work as switches? I get the idea of a semiconductor but not the junction part.",
            "Why is carbon-14 useful for dating old things, and why does it stop working after ~50,000 years?",
            "Explain the Doppler effect for sound and for light.",
            "how does the immune system tell its own cells apart from invaders?",
            "What does it mean that an electron is in a superposition of states?",
            "Explain what entropy is without using the word 'disorder'.",
            "why does a catalyst speed up a reaction but not change the equilibrium?",
            "Can you explain how insulin resistance leads to type 2 diabetes?",
            "What's the Higgs boson and why did finding it matter?",
            "how do vaccines and herd immunity work together",
            "Explain the greenhouse effect at the level of molecules absorbing infrared.",
            "Why do stars fuse elements only up to iron?",
            "explain how action potentials travel along a neuron",
            "What is a buffer solution and why does blood need one?",
            "How does GPS use relativity? I heard the clocks would drift without corrections.",
            "Explain how natural selection can produce something as complex as an eye.",
        ),
    ),
    # Logic puzzles and deductions in plain words (reasoning), no benchmark layout.
    "logic_puzzle": (
        "reasoning",
        0.50,
        (
            "My sister is older than me, I'm older than our cousin, and our cousin is older than my brother. Who's the youngest?",
            "I have a riddle for you: a farmer needs to get a wolf, a goat and a cabbage across a river in a boat that holds only one of them besides him. How does he do it?",
            "If every cat in my building is black and Tom lives in my building and is a cat, what colour is Tom? Now what if some cats only visit the building?",
            "Three friends ordered tea, coffee and juice. Ana didn't order tea. The person who ordered juice sat next to Ben. Carl ordered coffee. Who ordered what?",
            "Is this reasoning sound: 'Most successful people wake up early, so if I wake up early I'll be successful'?",
            "Two guards, one always lies and one always tells the truth, stand at two doors. What single question finds the safe door?",
            "There are 5 houses in a row painted different colours. The green one is right of the white one, the red one is in the middle. Where can the green house be?",
            "if no reptiles have fur and all snakes are reptiles, can a snake have fur? explain the logic",
            "A says B is lying. B says C is lying. C says both A and B are lying. Who is telling the truth?",
            "You see a card showing 7 and one showing a red back. Which cards must you turn over to test 'every card with an even number has a red back'?",
            "Four people need to cross a bridge at night with one torch; they take 1, 2, 5 and 10 minutes. What's the fastest way across?",
            "My argument: 'If the shop is open, the lights are on. The lights are off. So the shop is closed.' Valid or not?",
            "Which one doesn't belong and why: violin, cello, trumpet, viola",
            "John is in the kitchen. Mary moved the keys from the drawer to the table while he was out. Where will John look for the keys first?",
            "Some doctors are runners, all runners are early risers. Does it follow that some doctors are early risers?",
            "We have three switches downstairs and one bulb upstairs. You can go upstairs once. How do you find which switch controls the bulb?",
            "Ranking puzzle: Dana finished before Eli but after Fay. Gus finished last. Fay didn't win. Who won the race?",
            "Spot the flaw: 'Nobody has proven ghosts don't exist, so they must exist.'",
            "If yesterday was two days after Monday, what day is tomorrow?",
            "A box has 3 red and 3 blue socks in the dark. How many must I take to be sure of a matching pair? Explain.",
        ),
    ),
    # Humanities and social-science knowledge questions (chat), some with options pasted.
    "humanities": (
        "chat",
        0.35,
        (
            "why did the Berlin Wall fall in 1989?",
            "What is utilitarianism, and what's the main objection to it?",
            "Who were the Medici and why were they so influential in Renaissance Florence?",
            "what does 'separation of powers' mean in the US constitution",
            "Which of these was NOT one of the causes of World War I? a) militarism b) alliances c) the Great Depression d) nationalism",
            "Explain the difference between a recession and a depression.",
            "What was the significance of the Magna Carta?",
            "In sociology, what is the difference between a norm and a value?",
            "Who wrote 'The Wealth of Nations' and what was its main argument?\nA. Karl Marx\nB. Adam Smith\nC. John Maynard Keynes\nD. David Ricardo",
            "why is the Silk Road considered so important in world history",
            "What's the difference between Sunni and Shia Islam?",
            "How did the printing press change Europe?",
            "what is cognitive dissonance, in psychology terms",
            "Which of the following best describes a monopoly? (1) many sellers, one product (2) one seller, no close substitutes (3) few sellers, similar products (4) many sellers, different products",
            "What did Descartes mean by 'I think, therefore I am'?",
            "Why did the Ottoman Empire decline?",
            "What's the role of the central bank when inflation is high?",
            "Explain what existentialism is about, Sartre and Camus in particular.",
            "how does the electoral college work",
            "What was apartheid and how did it end?",
        ),
    ),
    # Write a function for a small numeric or string task, in plain words (code generation).
    "function_request": (
        "code_generation",
        0.25,
        (
            "write a python function that returns the nth prime number",
            "Can you write me a function to compute the greatest common divisor of two numbers?",
            "I need a JavaScript function that checks if a number is a perfect square.",
            "write a function that takes a list of numbers and returns the second largest",
            "Python: function to convert a decimal number to binary without using bin()",
            "Write a function in C that reverses the digits of an integer.",
            "Give me a Python function that counts the vowels in a string.",
            "write code for a function that returns the sum of the digits of n",
            "Write a function to check whether a year is a leap year.",
            "Create a function that returns all the divisors of a number, in Go.",
            "python function to find the longest word in a sentence",
            "I want a function that rotates a list k places to the right.",
            "Write a Rust function that computes the factorial of n with overflow checking.",
            "write a function that returns True if two strings are anagrams",
            "Can you code a function that computes the median of a list?",
            "function in typescript to round a number to 2 decimal places correctly",
            "Write a Python function that returns the Fibonacci numbers below a limit as a list.",
            "Write a Java method that tells whether a number is an Armstrong number.",
            "make a function that converts Celsius to Fahrenheit and back",
            "Write a function to compute the area of a triangle from its three sides (Heron's formula).",
        ),
    ),
    # A passage pasted with a question answered from it (extraction), in a user's words.
    "passage_question": (
        "extraction",
        0.30,
        (
            "Read this and tell me who won:\n\nThe 1954 World Cup final in Bern saw West Germany come back from two goals down to beat the heavily favoured Hungarian side 3-2, a match later called the Miracle of Bern.",
            "According to the paragraph, why did the factory close?\n\nAfter forty years in the town, the Halvorsen textile mill shut its doors in 2009. Managers cited rising energy costs and competition from cheaper imports, and the owners chose to move production abroad.",
            "From this product description, what's the battery life?\n\nThe Aero X2 headphones weigh 250 g, support Bluetooth 5.3 and give up to 38 hours of playback on a single charge, with a 10-minute quick charge adding 4 hours.",
            "Here's a bit of my lease. Am I allowed to have a cat?\n\n'Tenants may keep one small caged bird or fish tank. No other animals are permitted on the premises without prior written consent of the landlord.'",
            "What year did the author move to Lisbon, based on this?\n\nI grew up in Porto, studied in Coimbra and worked in London for a decade before finally settling in Lisbon in 2016, where I opened my studio.",
            "Using only the text, how many people were hurt?\n\nA bus carrying 42 passengers skidded off the road near Graz on Sunday. Police said 11 people were taken to hospital with minor injuries and two were seriously hurt.",
            "which river does the text say the city was built on?\n\nFounded by Roman soldiers as a frontier camp, the settlement grew along the banks of the Danube and became a trading post for salt and amber.",
            "In the passage below, what is the main ingredient of the dish?\n\nKoshari, Egypt's national dish, layers rice, lentils and macaroni under a spiced tomato sauce, topped with chickpeas and crispy fried onions. Lentils give it most of its protein.",
            "Answer from this email: when is the deadline?\n\nHi team, the grant portal closes on the 28th at 5pm CET, but please send me your sections by the 21st so I can merge them.",
            "Based on the report below, which region grew fastest?\n\nSales rose 4% in the North, 9% in the West and 2% in the South, while the East was flat. Online sales across all regions grew 15%.",
            "Tell me from this text what the patient is allergic to.\n\nDischarge note: 67-year-old male, admitted with pneumonia, treated with doxycycline owing to a documented penicillin allergy. Discharged in stable condition.",
            "Who designed the building, according to this?\n\nThe library's new wing, completed in 2021, was designed by the firm of Mariam Okafor and features a timber roof that collects rainwater for the gardens.",
            "What does this paragraph say causes the tides?\n\nTides rise and fall twice a day mainly because of the Moon's gravity pulling on the oceans, with the Sun adding a smaller effect that makes spring and neap tides.",
            "In this story, why was the girl late to school?\n\nMaya missed the bus because her little brother hid her shoes, and by the time she found them under the sofa, the bus had already turned the corner.",
            "from the job ad, what languages do they want?\n\nWe are hiring a backend developer with 3+ years of Python or Go, some SQL, and ideally experience with Kubernetes. German is a plus but not required.",
        ),
    ),
    # Multiple-choice science questions in layouts other than MMLU's (science).
    "mc_science": (
        "science",
        0.40,
        (
            "Which gas do plants take in during photosynthesis? a) oxygen b) nitrogen c) carbon dioxide d) hydrogen",
            "What is the SI unit of electrical resistance?\n(A) volt (B) ampere (C) ohm (D) watt",
            "Quick quiz question: which blood cells carry oxygen? options: platelets / red blood cells / white blood cells / plasma",
            "Which of the following is a noble gas?\n1) chlorine\n2) neon\n3) sodium\n4) sulfur",
            "A ball is thrown straight up. At the top of its path, its acceleration is:\nA - zero\nB - 9.8 m/s^2 downward\nC - 9.8 m/s^2 upward\nD - it depends on the mass",
            "Which part of the cell contains the genetic material? A. cell wall B. nucleus C. ribosome D. cytoplasm. Explain your choice.",
            "The pH of a neutral solution at 25 °C is: (a) 0 (b) 7 (c) 10 (d) 14",
            "Which vitamin deficiency causes scurvy?\nA) vitamin A\nB) vitamin B12\nC) vitamin C\nD) vitamin D",
            "What type of rock forms from cooled magma? igneous, sedimentary, or metamorphic?",
            "Which of these is a vector quantity? - speed - mass - velocity - temperature",
            "Which enzyme breaks down starch in the mouth? A amylase B lipase C pepsin D trypsin",
            "In which phase of mitosis do sister chromatids separate?\n(1) prophase (2) metaphase (3) anaphase (4) telophase",
            "Choose the correct answer: the chemical formula of table salt is\nA. KCl\nB. NaCl\nC. NaOH\nD. CaCl2",
            "Which planet has the shortest orbit around the Sun? Mercury, Venus, Earth or Mars?",
            "Which organ produces bile? (A) pancreas (B) gallbladder (C) liver (D) stomach",
        ),
    ),
}


def second_source_prompts() -> Iterator[AuthoredPrompt]:
    """The prompts above in a fixed order: id ``authored/second_<kind>/<n>``, each its own split
    group."""
    return prompts_by_kind(SECOND_SOURCE_PROMPTS, "second_")
