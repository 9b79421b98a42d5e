"""A retrieval evaluation: a small set of documents and questions whose answering document is known.
With the offline embedder, hybrid search (vectors and BM25 fused by rank) must put the answer in
the top five for at least 80% of the questions."""

from __future__ import annotations

from servicetsunami.services.container import Services
from servicetsunami.services.vectors.search import search_vectors
from servicetsunami.tenancy import Principal
from tests.integration.vectors.conftest import build_index, write_source

DOCUMENTS = {
    1: "To reset your password, open Settings, choose Security and click Reset password; a link is emailed to you.",
    2: "Invoices are issued on the first day of each month and are due within thirty days.",
    3: "A late payment fee of two percent is added to invoices paid after the due date.",
    4: "Refunds are sent back to the original card within five to ten business days.",
    5: "The mobile app works on iPhone and Android phones running the two latest system versions.",
    6: "Two-factor authentication protects your account with a code from an authenticator app.",
    7: "You can export your data as CSV or Parquet files from the Reports page.",
    8: "Our support team answers chat messages from 8am to 6pm, Monday to Friday.",
    9: "Shipping within the country takes three to five days; international orders take up to three weeks.",
    10: "Returns are accepted within sixty days of delivery if the item is unused and in its box.",
    11: "The Pro plan costs forty dollars per user per month and includes unlimited projects.",
    12: "Data is stored encrypted at rest in data centres located in Frankfurt and Dublin.",
    13: "Admins can invite new team members from the Users page by entering their email address.",
    14: "The API allows one thousand requests per minute per key; more are answered with status 429.",
    15: "Deleting your account removes all projects and files permanently after a thirty day grace period.",
    16: "Dark mode can be switched on under Settings, Appearance, Theme.",
    17: "Gift cards never expire and can be combined with other discounts at checkout.",
    18: "Backups of every workspace are taken each night and kept for thirty five days.",
    19: "Single sign-on with SAML or OpenID Connect is available on the Enterprise plan.",
    20: "Webhooks notify your server with a POST request whenever an order changes status.",
}

QUESTIONS = {
    "How do I change my forgotten password?": 1,
    "When do I have to pay an invoice?": 2,
    "What happens if I pay my bill late?": 3,
    "How long does a refund take to reach my card?": 4,
    "Does the app run on Android?": 5,
    "How do I turn on two-factor authentication codes?": 6,
    "Can I download my data as a CSV file?": 7,
    "What hours is customer support available?": 8,
    "How long does international shipping take?": 9,
    "Can I return an item I bought two months ago?": 10,
    "How much does the Pro plan cost?": 11,
    "Where are the data centres?": 12,
    "How do I add a new user to my team?": 13,
    "What is the API rate limit?": 14,
    "Is deleting my account permanent?": 15,
    "How do I enable dark mode?": 16,
    "Do gift cards expire?": 17,
    "How often are backups made?": 18,
    "Do you support SAML single sign-on?": 19,
    "How do webhooks tell me about order changes?": 20,
}


def recall_at_5(services: Services, principal: Principal, query_type: str) -> float:
    hits = 0
    for question, answer in QUESTIONS.items():
        found = search_vectors(services, principal, "faq_idx", query_text=question, k=5, query_type=query_type)
        hits += answer in [row[0] for row in found["rows"]]
    return hits / len(QUESTIONS)


def test_hybrid_search_finds_the_answer_in_the_top_five_for_most_questions(services: Services, acme: Principal) -> None:
    write_source(services, acme, "faq", [{"id": i, "body": text} for i, text in DOCUMENTS.items()])
    build_index(services, acme, "faq_idx", "faq")
    hybrid = recall_at_5(services, acme, "hybrid")
    vectors_only = recall_at_5(services, acme, "ann")
    print(f"recall@5: hybrid {hybrid:.2f}, vectors only {vectors_only:.2f}")
    assert hybrid >= 0.8
