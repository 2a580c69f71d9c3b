from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.examples import DOG_WALKING, NINE_TITLES, PUBLIC_SPEAKING


def texts(cluster: dict[str, object]) -> list[str]:
    members = cluster["members"]
    assert isinstance(members, list)
    return [m["text"] for m in members]


def test_nine_titles_give_exactly_the_two_groups(http: httpx.Client) -> None:
    response = http.post("/v1/cluster", json={"sentences": NINE_TITLES})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [texts(c) for c in body["clusters"]] == [DOG_WALKING, PUBLIC_SPEAKING]
    assert [c["size"] for c in body["clusters"]] == [5, 4]
    assert body["unclustered"] == []
    for cluster in body["clusters"]:
        assert cluster["representative"] in cluster["members"]
        for member in cluster["members"]:
            assert NINE_TITLES[member["index"]] == member["text"]


def test_order_of_input_does_not_change_the_groups(http: httpx.Client) -> None:
    shuffled = NINE_TITLES[::-1]
    body = http.post("/v1/cluster", json={"sentences": shuffled}).json()
    groups = [set(texts(c)) for c in body["clusters"]]
    assert groups == [set(DOG_WALKING), set(PUBLIC_SPEAKING)]


def test_identical_requests_give_identical_answers(http: httpx.Client) -> None:
    first = http.post("/v1/cluster", json={"sentences": NINE_TITLES}).json()
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda _: http.post("/v1/cluster", json={"sentences": NINE_TITLES}).json(), range(8))
        )
    assert all(a == first for a in answers)


def test_num_clusters_and_min_cluster_size(http: httpx.Client) -> None:
    body = http.post("/v1/cluster", json={"sentences": NINE_TITLES, "num_clusters": 2}).json()
    assert [set(texts(c)) for c in body["clusters"]] == [set(DOG_WALKING), set(PUBLIC_SPEAKING)]
    body = http.post("/v1/cluster", json={"sentences": NINE_TITLES, "min_cluster_size": 5}).json()
    assert [texts(c) for c in body["clusters"]] == [DOG_WALKING]
    assert [m["text"] for m in body["unclustered"]] == PUBLIC_SPEAKING


def test_distance_threshold_override(http: httpx.Client) -> None:
    body = http.post("/v1/cluster", json={"sentences": NINE_TITLES, "distance_threshold": 1.5}).json()
    assert [c["size"] for c in body["clusters"]] == [9]
    body = http.post("/v1/cluster", json={"sentences": NINE_TITLES, "distance_threshold": 0.01}).json()
    assert len(body["clusters"]) == 9


def test_single_sentence(http: httpx.Client) -> None:
    body = http.post("/v1/cluster", json={"sentences": ["only one"]}).json()
    assert body["clusters"] == [
        {
            "size": 1,
            "representative": {"index": 0, "text": "only one"},
            "members": [{"index": 0, "text": "only one"}],
        }
    ]
