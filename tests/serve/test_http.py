"""The HTTP layer over tiny trained runs of several families: the runs list and a run's
record, drawing on demand (deterministic by seed), the latent explorer, the comparison, and
every bound a request carries (a 400 in one line of JSON, never a traceback)."""

from __future__ import annotations

import io
import math

import pytest

pytest.importorskip("starlette", reason="the serve extra is missing: pip install -e '.[serve]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx: pip install -e '.[test]'")

from httpkit import BASE_URL, assert_error  # noqa: E402
from PIL import Image  # noqa: E402


def picture(response) -> Image.Image:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "image/png"
    assert float(response.headers["x-genlab-seconds"]) >= 0
    return Image.open(io.BytesIO(response.content))


def test_the_runs_list_has_every_run_with_its_family_and_status(client, names):
    response = client.get("/api/runs")
    assert response.status_code == 200
    listed = {run["name"]: run for run in response.json()["runs"]}
    assert set(listed) == set(names.values())
    families = {key: listed[name]["family"] for key, name in names.items()}
    assert families == {
        "vae": "vae",
        "cvae": "vae",
        "gan": "gan",
        "rbm": "rbm",
        "diffusion": "diffusion",
        "flow": "flow",
        "dae": "ae",
    }
    for run in listed.values():
        assert run["status"] == "finished" and run["error"] is None
        assert run["data"] == "digits" and run["epochs"] >= 1 and run["step"] >= 1
        assert isinstance(run["updated"], float)
    assert listed[names["cvae"]]["conditional"] is True
    assert listed[names["vae"]]["headline"]["unit"] == "bits/dim"
    assert listed[names["gan"]]["headline"] is None
    assert isinstance(response.json()["version"], str)
    assert client.get("/api/runs").json()["version"] == response.json()["version"]


def test_a_runs_record_says_what_its_family_can_draw(client, names):
    caps = {
        key: client.get(f"/api/runs/{name}").json()["capabilities"] for key, name in names.items()
    }
    assert caps["vae"]["latent"] == "encoder" and caps["vae"]["latent_dim"] == 2
    assert caps["vae"]["manifold"] and caps["vae"]["reconstruct"] and caps["vae"]["steps"] is None
    assert caps["cvae"]["classes"] == [str(d) for d in range(10)]
    assert caps["gan"]["latent"] == "generator" and caps["gan"]["latent_dim"] == 4
    assert caps["rbm"]["steps"] == "chain" and caps["rbm"]["max_steps"] == 1000
    assert caps["diffusion"]["steps"] == "iterative" and caps["diffusion"]["max_steps"] == 20
    assert caps["diffusion"]["latent"] is None and not caps["diffusion"]["guidance"]
    assert caps["flow"]["temperature"] and caps["flow"]["latent"] == "encoder"
    assert caps["dae"]["steps"] == "chain" and caps["dae"]["sample"]
    record = client.get(f"/api/runs/{names['vae']}").json()
    assert record["config"]["model"]["name"] == "vae" and record["run"]["status"] == "finished"
    assert "elbo" in record["eval"] and record["limits"]["n"] == 64
    assert record["latest_grid"].startswith(f"/api/runs/{names['vae']}/files/samples/train-")
    assert client.get(record["latest_grid"]).headers["content-type"] == "image/png"
    assert client.get(f"/api/runs/{names['gan']}").json()["eval"] is None


def test_metrics_from_a_line_on(client, names):
    whole = client.get(f"/api/runs/{names['vae']}/metrics").json()
    assert len(whole["records"]) == whole["next"] >= 2
    assert all("step" in r for r in whole["records"])
    rest = client.get(f"/api/runs/{names['vae']}/metrics?after=1").json()
    assert rest["records"] == whole["records"][1:] and rest["next"] == whole["next"]
    assert client.get(f"/api/runs/{names['vae']}/metrics?after=999").json()["records"] == []


@pytest.mark.parametrize("key", ["vae", "gan", "rbm", "diffusion", "flow", "dae", "cvae"])
def test_a_sample_grid_is_the_same_for_a_seed_and_differs_for_another(client, names, key):
    url = f"/api/runs/{names[key]}/sample.png?n=9"
    first = client.get(url + "&seed=5")
    assert picture(first).size[0] > 0
    assert client.get(url + "&seed=5").content == first.content
    assert client.get(url + "&seed=6").content != first.content


def test_sampling_options_where_the_family_has_them(client, names):
    flow = f"/api/runs/{names['flow']}/sample.png?n=4"
    assert client.get(flow + "&temperature=0.5").content != client.get(flow).content
    assert picture(client.get(f"/api/runs/{names['rbm']}/sample.png?n=4&steps=3"))
    assert picture(client.get(f"/api/runs/{names['diffusion']}/sample.png?n=4&steps=2"))
    by_name = client.get(f"/api/runs/{names['cvae']}/sample.png?n=4&class=7")
    assert (
        by_name.content == client.get(f"/api/runs/{names['cvae']}/sample.png?n=4&class=7").content
    )
    assert (
        by_name.content != client.get(f"/api/runs/{names['cvae']}/sample.png?n=4&class=1").content
    )
    grid = picture(client.get(f"/api/runs/{names['vae']}/sample.png?n=64"))
    assert grid.size[0] == grid.size[1] > 8 * 32  # 8 x 8 tiles of at least 32 pixels


def test_chains_over_time(client, names):
    rbm = picture(client.get(f"/api/runs/{names['rbm']}/chain.png?n=3&steps=50"))
    assert rbm.size[0] > rbm.size[1]  # more columns (snapshots) than rows (chains)
    assert picture(client.get(f"/api/runs/{names['dae']}/chain.png?n=2&steps=5"))
    diffusion = picture(client.get(f"/api/runs/{names['diffusion']}/chain.png?n=2&steps=10"))
    assert diffusion.size[0] > diffusion.size[1]
    again = client.get(f"/api/runs/{names['diffusion']}/chain.png?n=2&steps=10")
    assert (
        again.content
        == client.get(f"/api/runs/{names['diffusion']}/chain.png?n=2&steps=10").content
    )
    assert_error(client.get(f"/api/runs/{names['vae']}/chain.png"), 400)
    assert_error(client.get(f"/api/runs/{names['gan']}/chain.png"), 400)


def test_the_latent_map_places_test_images_in_range(client, names):
    run = names["vae"]
    found = client.get(f"/api/runs/{run}/latent?points=50").json()
    test_size = client.get(f"/api/runs/{run}").json()["run"]["data"]["test"]
    assert found["method"] == "pca" and len(found["points"]) == min(50, test_size)
    assert found["classes"] == [str(d) for d in range(10)] and found["components"] == 2
    for point in found["points"]:
        assert 0 <= point["i"] < test_size and point["label"] in range(10)
        assert -1 <= point["x"] <= 1 and -1 <= point["y"] <= 1
        assert math.isfinite(point["x"]) and math.isfinite(point["y"])
    assert len({p["i"] for p in found["points"]}) == len(found["points"])
    assert sum(found["explained_variance"]) == pytest.approx(1.0, abs=1e-4)
    larger = client.get(f"/api/runs/{run}/latent?points=100").json()["points"]
    assert larger[:50] == found["points"]  # a larger map adds points, the others stay put
    sprite = picture(client.get(found["sprite"]))
    rows = math.ceil(50 / found["cols"])
    assert sprite.size == (found["cols"] * found["tile"], rows * found["tile"])
    tsne = client.get(f"/api/runs/{run}/latent?points=30&method=tsne").json()
    assert len(tsne["points"]) == 30
    assert all(-1 <= p["x"] <= 1 and -1 <= p["y"] <= 1 for p in tsne["points"])
    everything = client.get(f"/api/runs/{run}/latent?points=2000").json()["points"]
    assert len(everything) == test_size  # the whole test split, no more
    flow = client.get(f"/api/runs/{names['flow']}/latent?points=20").json()
    assert flow["latent_dim"] == 64 and flow["components"] == 8


def test_a_point_shows_its_image_reconstruction_and_neighbours(client, names):
    run = names["vae"]
    image = picture(client.get(f"/api/runs/{run}/test/3.png"))
    assert image.size[0] >= 128
    assert picture(client.get(f"/api/runs/{run}/reconstruction/3.png")).size == image.size
    near = client.get(f"/api/runs/{run}/neighbours/3?k=5").json()
    assert len(near["neighbours"]) == 5 and 3 not in near["neighbours"]
    assert near["distances"] == sorted(near["distances"])
    assert picture(client.get(f"/api/runs/{names['cvae']}/reconstruction/0.png"))
    assert_error(client.get(f"/api/runs/{run}/test/100000.png"), 404)
    assert_error(client.get(f"/api/runs/{run}/test/x.png"), 404)
    assert_error(client.get(f"/api/runs/{names['gan']}/neighbours/3"), 400)
    assert_error(client.get(f"/api/runs/{names['gan']}/reconstruction/3.png"), 400)


def test_interpolation_decoding_and_the_manifold(client, names):
    vae, gan = names["vae"], names["gan"]
    strip = picture(client.get(f"/api/runs/{vae}/interpolate.png?a=1&b=2&steps=6"))
    assert strip.size[0] > 6 * strip.size[1]  # one row of 8 tiles: the two ends and 6 steps
    gan_strip = picture(client.get(f"/api/runs/{gan}/interpolate.png?a=10&b=20&steps=5"))
    assert gan_strip.size[0] > 4 * gan_strip.size[1]
    cvae = picture(client.get(f"/api/runs/{names['cvae']}/interpolate.png?a=0&b=1&class=3"))
    assert cvae.size[0] > cvae.size[1]
    centre = client.get(f"/api/runs/{vae}/decode.png").content
    moved = client.get(f"/api/runs/{vae}/decode.png?coords=2,-1")
    assert picture(moved) and moved.content != centre
    assert picture(client.get(f"/api/runs/{gan}/decode.png?coords=1,1,-1,0.5"))
    assert_error(client.get(f"/api/runs/{gan}/decode.png?coords=1,1,1,1,1"), 400)  # z has 4
    assert_error(client.get(f"/api/runs/{vae}/decode.png?coords=1,1,1"), 400)  # 2 directions
    grid = picture(client.get(f"/api/runs/{vae}/manifold.png?size=5"))
    assert grid.size[0] == grid.size[1] >= 5 * 32
    assert_error(client.get(f"/api/runs/{gan}/manifold.png"), 400)  # its z has 4 dimensions
    assert_error(client.get(f"/api/runs/{names['rbm']}/decode.png"), 400)
    assert_error(client.get(f"/api/runs/{names['diffusion']}/latent"), 400)


def test_the_comparison_renders_evaluated_runs_and_lists_the_others(client, names):
    found = client.get(f"/api/compare?runs={names['vae']},{names['gan']}").json()
    assert found["runs"] == [names["vae"]] and list(found["not_evaluated"]) == [names["gan"]]
    page = client.get(found["url"])
    assert page.status_code == 200 and "genlab comparison report" in page.text
    sources = [part.split("'")[0] for part in found["html"].split("src='")[1:]]
    assert sources and all(s.startswith("/api/compare/") for s in sources)
    assert client.get(sources[0]).headers["content-type"] == "image/png"
    nothing = client.get(f"/api/compare?runs={names['gan']}").json()
    assert nothing["url"] is None and "evaluated" in nothing["html"]
    assert_error(client.get("/api/compare?runs=nosuchrun"), 404)
    key = found["url"].split("/")[3]
    assert_error(client.get(f"/api/compare/{key}/%2e%2e/x.html"), 404)


BOUNDS = [
    "sample.png?n=0",
    "sample.png?n=65",
    f"sample.png?n={10**12}",
    "sample.png?n=abc",
    "sample.png?n=1.5",
    "sample.png?n=%C2%B2",
    "sample.png?seed=-1",
    f"sample.png?seed={2**31}",
    "sample.png?seed=1e3",
    f"sample.png?steps={10**9}",
    "sample.png?steps=0",
    "sample.png?temperature=1",  # not a flow
    "sample.png?steps=5",  # one pass
    "sample.png?class=3",  # unconditional
    "sample.png?guidance=1",
    "chain.png?n=9",
    "latent?points=5",
    "latent?points=2001",
    f"latent?points={10**12}",
    "latent?method=umap",
    "neighbours/3?k=0",
    "neighbours/3?k=65",
    "interpolate.png?steps=1",
    "interpolate.png?steps=17",
    "interpolate.png?a=-1",
    "decode.png?coords=1,2,3,4,5,6,7,8,9",
    "decode.png?coords=6",
    "decode.png?coords=nan",
    "decode.png?coords=1,,2",
    "manifold.png?size=1",
    "manifold.png?size=21",
    "metrics?after=-1",
    f"metrics?after={10**12}",
]


@pytest.mark.parametrize("query", BOUNDS)
def test_a_number_out_of_bounds_is_a_400_in_one_line(client, names, query):
    assert_error(client.get(f"/api/runs/{names['vae']}/{query}"), 400)


@pytest.mark.parametrize(
    ("key", "query"),
    [
        ("flow", "sample.png?temperature=0"),
        ("flow", "sample.png?temperature=-1"),
        ("flow", "sample.png?temperature=nan"),
        ("flow", "sample.png?temperature=inf"),
        ("flow", "sample.png?temperature=11"),
        ("flow", "sample.png?temperature=0.5&steps=3"),
        ("diffusion", "sample.png?steps=21"),  # the tiny model has 20 steps
        ("diffusion", "chain.png?steps=21"),
        ("diffusion", "sample.png?guidance=2"),  # unconditional
        ("rbm", f"sample.png?steps={10**9}"),
        ("rbm", "chain.png?steps=1001"),
        ("cvae", "sample.png?class=dog"),
        ("cvae", "sample.png?class=10"),
        ("cvae", "sample.png?class=-1"),
        ("cvae", f"sample.png?class={'x' * 300}"),
        ("gan", "interpolate.png?a=99999999999"),
    ],
)
def test_what_a_family_cannot_do_is_a_400_in_one_line(client, names, key, query):
    assert_error(client.get(f"/api/runs/{names[key]}/{query}"), 400)


def test_a_compare_request_is_bounded(client, names):
    assert_error(client.get("/api/compare"), 400)
    assert_error(client.get("/api/compare?runs=" + ",".join(f"r{i}" for i in range(17))), 400)
    assert_error(client.get(f"/api/compare?runs={names['vae']},{names['vae']}"), 400)


def test_unknown_runs_and_routes_are_404(client):
    assert_error(client.get("/api/runs/00099-none/sample.png"), 404)
    assert_error(client.get("/api/runs/nosuchrun"), 404)
    assert_error(client.get("/api/nothing"), 404)
    assert_error(client.get("/runs/..%2fetc"), 404)
    page = client.get("/runs/00099-gone")  # the page itself says the run is gone
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head_are_allowed(client, names, method):
    response = client.request(method, f"/api/runs/{names['vae']}/sample.png")
    assert_error(response, 405)
    assert response.headers["allow"] == "GET, HEAD"


def test_head_answers_without_a_body(client, names):
    response = client.head("/api/runs")
    assert response.status_code == 200 and response.content == b""


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1:9999", "127.0.0.2:8000", ""]
)
def test_a_request_for_another_host_name_is_refused(client, host):
    assert_error(client.get("/api/runs", headers={"host": host}), 400)


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "127.0.0.1", "LOCALHOST"])
def test_the_bound_names_are_served(client, host):
    assert client.get("/api/runs", headers={"host": host}).status_code == 200


def test_base_url_is_the_bound_address():
    assert BASE_URL == "http://127.0.0.1:8000"
