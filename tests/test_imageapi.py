"""Image API 1, 2 and 3: reading services and choosing the image to ask for."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from indexer.errors import NotIIIFError
from indexer.imageapi import (
    ImageService,
    best_service,
    clip_box,
    full_image_url,
    image_request_url,
    locate_region,
    needs_info,
    parse_info,
    parse_service,
    region_size,
    region_to_cut,
    thumbnail_url,
    url_region,
    with_info,
)
from indexer.imageapi_tiles import one_tile_picture, tile_plan

INFO = Path(__file__).parent / "fixtures" / "iiif" / "image-info"
TARGET = 224


def info(name: str) -> ImageService:
    return parse_info(json.loads((INFO / name).read_text()), f"https://example.org/{name}")


def tail(service: ImageService, url: str) -> str:
    """The request part of a URL: what follows the service id."""
    assert url.startswith(service.id + "/")
    return url[len(service.id) :]


# --- reading ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "level", "size"),
    [
        ("gallica_image.1.gallica.bnf.12148.btv1b53243704g.f1.json", 1, 2, (7900, 11060)),
        ("harvard-ids_statue_info.json", 1, 1, (4132, 8176)),
        ("openseadragon_iiif_1_0_files_info.json", 1, 1, (775, 1024)),
        ("edinburgh_profile_object_info.json", 2, 2, (7384, 4692)),  # profile is an object
        ("nls_image.2.nls-10146-101465411.json", 2, 1, (8932, 6493)),  # profile is an array
        ("rotterdamspubliek_image.2.rp-rtsa-4001-1985-1014-01.json", 2, 0, (9102, 6922)),
        ("wellcome_wellcome_info.json", 2, 0, (648, 1024)),
        ("wikimedia-toolforge_image.2.toolforge-e8f0e820e00680e69939a97ffccf64e8.json", 2, 2, None),
        ("iiif_image.3.918ecd18c2592080851777620de9bcb5-gottingen.json", 3, 1, (4032, 3024)),
        ("uvacreate_image.3.uvacreate-mmph-wae681.json", 3, 0, (1999, 1485)),
    ],
)
def test_info_documents_give_version_level_and_size(name, version, level, size):
    service = info(name)
    assert (service.version, service.level) == (version, level)
    if size:
        assert (service.width, service.height) == size


def test_info_reads_sizes_limits_and_scale_factors():
    toolforge = info("wikimedia-toolforge_image.2.toolforge-e8f0e820e00680e69939a97ffccf64e8.json")
    assert toolforge.sizes[0] == (203, 240) and len(toolforge.sizes) == 5
    assert (toolforge.max_width, toolforge.max_height) == (5000, 5000)  # inside the profile
    assert toolforge.id.endswith("iipsrv.fcgi/?iiif=cache/e8f0e820e00680e69939a97ffccf64e8.tif")
    assert info("harvard-ids_statue_info.json").scale_factors == [1, 2, 4, 8, 16, 32]  # v1


def test_info_reads_the_size_of_its_tiles():
    rotterdam = info("rotterdamspubliek_image.2.rp-rtsa-4001-1985-1014-01.json")
    assert (rotterdam.tile_width, rotterdam.tile_height) == (512, 512)  # height left out
    assert rotterdam.scale_factors == [1, 2, 4, 8, 16]
    uva = info("uvacreate_image.3.uvacreate-mmph-wae681.json")
    assert (uva.tile_width, uva.tile_height) == (128, 128)
    harvard = info("harvard-ids_statue_info.json")  # version 1: tile_width, tile_height
    assert (harvard.tile_width, harvard.tile_height) == (1024, 1024)
    # Tiles of two sizes: which scale factors go with which is lost in `scale_factors`.
    two = {"@id": "s", "profile": "level0", "tiles": [{"width": 256}, {"width": 512}]}
    assert (parse_service(two).tile_width, parse_service(two).tile_height) == (None, None)
    assert info("wellcome_wellcome_info.json").tile_width is None  # sizes only


def test_version_1_0_info_takes_its_id_from_the_url():
    doc = json.loads((INFO / "openseadragon_iiif_1_0_files_info.json").read_text())
    service = parse_info(doc, "https://example.org/iiif/files/info.json")
    assert service.id == "https://example.org/iiif/files"
    with pytest.raises(NotIIIFError, match="no @id"):
        parse_info(doc)


@pytest.mark.parametrize("doc", [[], "info", {"@id": "https://x/y"}, {"width": 10}])
def test_not_an_info_document_is_refused(doc):
    with pytest.raises(NotIIIFError):
        parse_info(doc, "https://x/y/info.json")


@pytest.mark.parametrize(
    ("described", "version", "level"),
    [
        ({"@id": "s", "profile": "http://iiif.io/api/image/2/level1.json"}, 2, 1),
        ({"@id": "s", "profile": "http://iiif.io/api/image/2/profiles/level2.json"}, 2, 2),
        ({"@id": "s", "profile": "http://iiif.io/api/image/2/level2"}, 2, 2),
        ({"id": "s", "type": "ImageService3", "profile": "level0"}, 3, 0),
        ({"id": "s", "type": "ImageService2", "profile": "level2"}, 2, 2),  # Ghent
        ({"@id": "s", "@type": "ImageService2", "profile": "level1"}, 2, 1),
        (
            {
                "@id": "s",
                "@context": "http://iiif.io/api/image/1/context.json",
                "profile": "http://library.stanford.edu/iiif/image-api/1.1/conformance.html#level1",
            },
            1,
            1,
        ),
        ({"@id": "s", "@context": "http://iiif.io/api/image/2/context.json"}, 2, None),
        # QDL: a version 2 context beside a profile URI that says "image/1".
        (
            {
                "@id": "s",
                "@context": "http://iiif.io/api/image/2/context.json",
                "profile": "http://iiif.io/api/image/1/level2.json",
            },
            2,
            2,
        ),
        ({"@id": "s", "protocol": "http://iiif.io/api/image"}, 2, None),
    ],
)
def test_service_version_and_level_from_every_profile_form(described, version, level):
    service = parse_service(described)
    assert service is not None
    assert (service.version, service.level) == (version, level)


def test_services_of_other_kinds_are_not_image_services():
    search = {"@id": "s", "profile": "http://iiif.io/api/search/0/search"}
    login = {"@id": "a", "profile": "http://iiif.io/api/auth/1/login"}
    assert parse_service(search) is None and parse_service(login) is None
    assert best_service([search, login]) is None


def test_service_id_loses_trailing_slash_and_info_json():
    assert parse_service({"@id": "https://x/iiif/a/", "profile": "level1"}).id == "https://x/iiif/a"
    raw = {"@id": "https://x/iiif/a/info.json", "profile": "level1"}
    assert parse_service(raw).id == "https://x/iiif/a"


def test_best_service_prefers_the_highest_version():
    both = [
        {"id": "https://x/v2", "type": "ImageService2", "profile": "level1"},
        {"id": "https://x/v3", "type": "ImageService3", "profile": "level1"},
    ]
    assert best_service(both).id == "https://x/v3"


@pytest.mark.parametrize(
    ("nested", "kind"),
    [
        ({"@id": "a", "profile": "http://iiif.io/api/auth/1/login"}, "login"),
        ({"@id": "a", "profile": "http://iiif.io/api/auth/0/clickthrough"}, "clickthrough"),
        ({"id": "a", "type": "AuthCookieService1", "profile": "kiosk"}, "kiosk"),
        (
            {
                "id": "p",
                "type": "AuthProbeService2",
                "service": [{"id": "a", "type": "AuthAccessService2", "profile": "active"}],
            },
            "active",
        ),
        (
            {"id": "p", "type": "AuthProbeService1", "profile": "http://iiif.io/api/auth/1/probe"},
            None,
        ),
    ],
)
def test_auth_services_are_noted_with_their_kind(nested, kind):
    described = {"id": "https://x/img", "type": "ImageService3", "profile": "level2"}
    described["service"] = [nested]
    assert parse_service(described).auth == kind


def test_service_survives_a_round_trip_through_json():
    service = info("uvacreate_image.3.uvacreate-mmph-wae681.json")
    assert service.sizes and service.scale_factors  # the lists are part of the check
    # The same form as dataclasses.asdict, which wrote the stores made before to_dict.
    assert service.to_dict() == dataclasses.asdict(service)
    stored = json.loads(json.dumps(service.to_dict()))
    stored["a_field_from_the_future"] = 1
    assert ImageService.from_dict(stored) == service
    # A store written before tiles were kept reads too, without them.
    for name in ("tile_width", "tile_height"):
        del stored[name]
    assert ImageService.from_dict(stored) == dataclasses.replace(
        service, tile_width=None, tile_height=None
    )


# --- asking ----------------------------------------------------------------------------


def service(version: int, level: int | None, **facts) -> ImageService:
    return ImageService(id="https://img.example/iiif/a", version=version, level=level, **facts)


@pytest.mark.parametrize(
    ("version", "level", "expected"),
    [
        (3, 2, "/full/224,/0/default.jpg"),
        (3, 1, "/full/224,/0/default.jpg"),
        (2, 1, "/full/224,/0/default.jpg"),
        (2, None, "/full/224,/0/default.jpg"),  # unknown level: assume a scaling server
        (1, 1, "/full/224,/0/native.jpg"),  # version 1 quality is "native"
    ],
)
def test_scaling_services_get_the_short_side_at_the_target(version, level, expected):
    portrait = service(version, level)
    assert tail(portrait, image_request_url(portrait, 3000, 4000, TARGET)) == expected


def test_landscape_images_are_asked_by_height():
    landscape = service(3, 2)
    assert tail(landscape, image_request_url(landscape, 4000, 3000, TARGET)) == (
        "/full/,224/0/default.jpg"
    )


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (3, "/full/max/0/default.jpg"),
        (2, "/full/full/0/default.jpg"),
        (1, "/full/full/0/native.jpg"),
    ],
)
def test_small_images_are_never_upscaled(version, expected):
    small = service(version, 2)
    assert tail(small, image_request_url(small, 200, 900, TARGET)) == expected
    assert tail(small, image_request_url(small, 224, 224, TARGET)) == expected


def test_the_service_size_wins_over_the_resource_size():
    # Wellcome: the resource says 742 x 1024, the service serves 2569 x 3543.
    stated = service(2, 1, width=2569, height=3543)
    assert tail(stated, image_request_url(stated, 150, 200, TARGET)) == "/full/224,/0/default.jpg"


def test_level_0_takes_the_smallest_listed_size_that_covers_the_target():
    wellcome = info("wellcome_wellcome_info.json")  # sizes 63x100 ... 648x1024
    # DLCS says sizeByWhListed: its listed sizes are asked as "w,h"
    assert tail(wellcome, image_request_url(wellcome, None, None, TARGET)) == (
        "/full/253,400/0/default.jpg"
    )
    uva = info("uvacreate_image.3.uvacreate-mmph-wae681.json")  # version 3 wants "w,h"
    assert tail(uva, image_request_url(uva, 1999, 1485, TARGET)) == "/full/500,372/0/default.jpg"


def test_level_0_falls_back_to_the_largest_listed_size():
    few = service(2, 0, sizes=[(50, 80), (100, 160)])
    assert tail(few, image_request_url(few, 1000, 1600, TARGET)) == "/full/100,/0/default.jpg"


def test_level_0_without_sizes_gets_the_whole_image():
    rotterdam = info("rotterdamspubliek_image.2.rp-rtsa-4001-1985-1014-01.json")
    assert tail(rotterdam, image_request_url(rotterdam, None, None, TARGET)) == (
        "/full/full/0/default.jpg"
    )


def test_a_scaling_service_with_listed_sizes_still_asks_exactly():
    gouda = info("goudatijdmachine_image.2.goudatijdmachine-51803.json")
    assert tail(gouda, image_request_url(gouda, None, None, TARGET)) == "/full/,224/0/default.jpg"


def test_stated_limits_make_version_2_ask_for_max():
    spk = info("spkberlin_image.2.spk-berlin-630107580-00000001.json")
    assert tail(spk, full_image_url(spk)) == "/full/max/0/default.jpg"
    tiny = service(2, 2, width=5000, height=8000, max_width=200)
    assert tail(tiny, image_request_url(tiny, None, None, TARGET)) == "/full/max/0/default.jpg"


def test_unknown_size_asks_for_a_bounded_box():
    assert tail(service(3, 2), image_request_url(service(3, 2), None, None, TARGET)) == (
        "/full/!448,448/0/default.jpg"
    )
    assert tail(service(2, 1), image_request_url(service(2, 1), None, None, TARGET)) == (
        "/full/448,/0/default.jpg"
    )


def test_a_region_is_asked_for_and_sized_by_its_own_size():
    scaling = service(2, 1, width=8174, height=6036)
    url = image_request_url(scaling, None, None, TARGET, region="4164,352,3702,5420")
    assert tail(scaling, url) == "/4164,352,3702,5420/224,/0/default.jpg"
    static = service(2, 0)  # a level 0 service cannot crop: the whole image
    assert tail(static, image_request_url(static, 10, 10, TARGET, region="1,1,5,5")) == (
        "/full/full/0/default.jpg"
    )


def test_thumbnails():
    assert tail(service(3, 2), thumbnail_url(service(3, 2))) == "/full/!256,256/0/default.jpg"
    assert tail(service(1, 1), thumbnail_url(service(1, 1), 128)) == "/full/128,/0/native.jpg"
    uva = info("uvacreate_image.3.uvacreate-mmph-wae681.json")
    # the smallest listed size that covers the 256 box (250 x 186 would not)
    assert tail(uva, thumbnail_url(uva)) == "/full/500,372/0/default.jpg"
    small = service(3, 2, width=100, height=80)
    assert tail(small, thumbnail_url(small)) == "/full/max/0/default.jpg"


def test_thumbnails_use_only_the_sizes_the_level_guarantees():
    # Level 1 guarantees "w," and ",h" (v1 to v3), not "!w,h": the longer side is asked.
    portrait, landscape = service(2, 1, width=3000, height=4000), service(3, 1)
    assert tail(portrait, thumbnail_url(portrait)) == "/full/,256/0/default.jpg"
    assert tail(landscape, thumbnail_url(landscape, width=4000, height=3000)) == (
        "/full/256,/0/default.jpg"
    )
    assert tail(landscape, thumbnail_url(landscape)) == "/full/256,/0/default.jpg"  # shape unknown
    assert tail(service(1, 2), thumbnail_url(service(1, 2))) == "/full/!256,256/0/native.jpg"
    assert tail(service(2, None), thumbnail_url(service(2, None))) == (
        "/full/!256,256/0/default.jpg"  # unknown level at v2+: nearly always level 2
    )


def test_level_0_thumbnails_take_a_listed_size_that_covers_the_box():
    wellcome = info("wellcome_wellcome_info.json")  # 63x100, 127x200, 253x400, 648x1024
    assert tail(wellcome, thumbnail_url(wellcome)) == "/full/253,400/0/default.jpg"
    assert tail(wellcome, thumbnail_url(wellcome, 500)) == "/full/648,1024/0/default.jpg"
    assert tail(wellcome, thumbnail_url(wellcome, 1024)) == "/full/full/0/default.jpg"  # fits
    canonical = service(2, 0, sizes=[(100, 160), (300, 480)])  # no sizeByWhListed: "w,"
    assert tail(canonical, thumbnail_url(canonical)) == "/full/300,/0/default.jpg"


def test_level_0_pictures_at_most_a_box_take_the_largest_listed_size_that_fits():
    wellcome = info("wellcome_wellcome_info.json")  # 63x100, 127x200, 253x400, 648x1024
    assert tail(wellcome, thumbnail_url(wellcome, 500, at_most=True)) == (
        "/full/253,400/0/default.jpg"
    )
    assert tail(wellcome, thumbnail_url(wellcome, 200, at_most=True)) == (
        "/full/127,200/0/default.jpg"  # exactly the box
    )
    assert tail(wellcome, thumbnail_url(wellcome, 50, at_most=True)) == (
        "/full/63,100/0/default.jpg"  # none fits: the smallest
    )
    scaling = service(2, 2)  # asked for the box itself either way
    assert thumbnail_url(scaling, 500, at_most=True) == thumbnail_url(scaling, 500)


def test_sizes_by_wh_listed_is_read_from_the_profile():
    assert info("wellcome_wellcome_info.json").wh_listed
    assert not info("nls_image.2.nls-10146-101465411.json").wh_listed
    v3 = {"id": "s", "type": "ImageService3", "profile": "level0"}
    assert parse_service({**v3, "extraFeatures": ["sizeByWhListed"]}).wh_listed


def test_thumbnails_and_previews_of_a_region_show_that_region():
    scaling = service(2, 1, width=8174, height=6036)
    region = "4164,352,3702,5420"  # portrait, in a landscape image
    assert tail(scaling, thumbnail_url(scaling, region=region)) == (
        "/4164,352,3702,5420/,256/0/default.jpg"
    )
    assert tail(scaling, thumbnail_url(scaling, 1024, region=region)) == (
        "/4164,352,3702,5420/,1024/0/default.jpg"
    )
    small = service(3, 2)
    assert tail(small, thumbnail_url(small, region="0,0,200,100")) == (
        "/0,0,200,100/max/0/default.jpg"  # smaller than the box: never upscaled
    )
    static = service(2, 0, sizes=[(300, 480)])  # level 0 cannot crop: the whole image
    assert tail(static, thumbnail_url(static, region=region)) == "/full/300,/0/default.jpg"


def test_requests_stay_within_the_stated_limits():
    limited = service(3, 2, width=5000, height=8000, max_width=200)
    assert tail(limited, thumbnail_url(limited)) == "/full/max/0/default.jpg"
    unknown = service(3, 2, max_width=300, max_height=400)
    assert tail(unknown, image_request_url(unknown, None, None, TARGET)) == (
        "/full/!300,400/0/default.jpg"
    )
    by_area = service(2, 1, max_area=100_000)
    assert tail(by_area, image_request_url(by_area, None, None, TARGET)) == (
        "/full/316,/0/default.jpg"
    )


def test_a_region_in_an_image_url_is_read():
    vam = ImageService(id="https://framemark.vam.ac.uk//collections/2006AW1773", version=2)
    painted = vam.id + "/140,870,1800,1778/full/0/default.jpg"
    assert url_region(painted, vam) == "140,870,1800,1778"
    assert url_region(painted.replace("https:", "http:"), vam) == "140,870,1800,1778"
    assert url_region(vam.id + "/full/full/0/default.jpg", vam) is None
    assert url_region(vam.id + "/pct:10,10,50,50/full/0/default.jpg", vam) is None
    assert url_region("https://elsewhere.org/140,870,1800,1778/full/0/default.jpg", vam) is None
    assert url_region(vam.id + "/140,870,1800,1778/full/0", vam) is None  # not a request


def test_region_sizes_are_clipped_to_the_image():
    assert region_size("4164,352,3702,5420") == (3702, 5420)
    assert region_size("140,870,1800,1778", 1800, 1778) == (1660, 908)
    assert region_size("5000,0,10,10", 1800, 1778) is None  # outside the image
    assert region_size("full") is None and region_size("pct:0,0,50,50") is None


def test_a_level_0_service_without_sizes_takes_them_from_its_info():
    brief = parse_service({"@id": "https://x/img", "profile": "http://iiif.io/api/image/2/level0"})
    assert needs_info(brief)
    described = with_info(brief, info("wellcome_wellcome_info.json"))
    assert described.id == brief.id and described.sizes and not needs_info(described)
    assert tail(described, image_request_url(described, None, None, TARGET)) == (
        "/full/253,400/0/default.jpg"
    )
    assert not needs_info(info("uvacreate_image.3.uvacreate-mmph-wae681.json"))  # has sizes
    assert not needs_info(service(2, 1))


def test_a_box_is_clipped_to_the_image_as_a_server_clips_a_region():
    assert clip_box((100, 50, 400, 300), 1000, 800) == (100, 50, 400, 300)
    assert clip_box((800, 700, 400, 300), 1000, 800) == (800, 700, 200, 100)
    assert clip_box((1000, 0, 10, 10), 1000, 800) is None  # begins at the right edge


def test_only_a_service_that_cannot_crop_leaves_a_region_to_cut():
    assert region_to_cut(service(2, 0), "1,2,30,40") == (1, 2, 30, 40)
    assert region_to_cut(service(2, 1), "1,2,30,40") is None
    assert region_to_cut(service(2, None), "1,2,30,40") is None  # nearly always level 1+
    assert region_to_cut(service(2, 0), None) is None
    assert region_to_cut(service(2, 0), "full") is None


def test_a_region_is_judged_by_the_size_of_the_pictures_it_is_cut_from():
    # Cut from the whole image: by the service's own size, else the manifest's.
    static = locate_region(service(2, 0), "800,700,400,300", 1000, 800)
    assert static is not None and static.cut and static.size == (1000, 800)
    assert static.kept == (800, 700, 200, 100)
    assert static.in_whole() == (0.8, 0.875, 0.2, 0.125)
    stated = locate_region(service(2, 0, width=2000, height=1600), "800,700,400,300", 10, 8)
    assert stated is not None and stated.size == (2000, 1600) and not stated.outside
    plain = locate_region(None, "1000,0,10,10", 1000, 800)  # a plain image URL: cut too
    assert plain is not None and plain.cut and plain.outside and plain.in_whole() is None
    unsized = locate_region(service(2, 0), "0,0,10,10", None, None)
    assert unsized is not None and unsized.kept is None and not unsized.outside


def test_a_region_the_service_crops_is_judged_by_its_own_size_only():
    # The manifest's size may be a derivative's: the server clips to the image it has.
    crops = locate_region(service(2, 1), "1000,0,10,10", 1000, 800)
    assert crops is not None and not crops.cut and crops.size is None and not crops.outside
    stated = locate_region(service(2, 1, width=1000, height=800), "1000,0,10,10", 9000, 9000)
    assert stated is not None and not stated.cut and stated.outside
    assert locate_region(service(2, 1), "full", 1000, 800) is None


def test_a_region_to_cut_needs_the_image_size_from_the_info():
    # Listed sizes without the image's size: the region cannot be found in them.
    sizes = [(250, 188), (500, 375)]
    assert needs_info(service(2, 0, sizes=sizes), region="0,0,100,100")
    assert not needs_info(service(2, 0, sizes=sizes))
    assert not needs_info(service(2, 0, width=4000, height=3000, sizes=sizes), "0,0,100,100")
    assert not needs_info(service(2, 1), region="0,0,100,100")


def test_level_0_takes_the_listed_size_in_which_the_region_covers_the_target():
    static = service(
        2, 0, width=4000, height=3000, sizes=[(250, 188), (500, 375), (1000, 750), (2000, 1500)]
    )
    # The whole image: 500 x 375 covers 224 pixels. A quarter of it: 1000 x 750.
    assert tail(static, image_request_url(static, None, None, TARGET)) == "/full/500,/0/default.jpg"
    quarter = image_request_url(static, None, None, TARGET, region="0,0,2000,1500")
    assert tail(static, quarter) == "/full/1000,/0/default.jpg"
    # A region partly outside the image is measured as the server would clip it.
    past = image_request_url(static, None, None, TARGET, region="2000,1500,9000,9000")
    assert tail(static, past) == "/full/1000,/0/default.jpg"


def test_level_0_with_a_region_in_an_image_of_unknown_size_is_asked_whole():
    # Without the image's size, the region can be found only in the full-size picture.
    static = service(2, 0, sizes=[(250, 188), (500, 375)])
    assert tail(static, image_request_url(static, None, None, TARGET, region="0,0,9,9")) == (
        "/full/full/0/default.jpg"
    )


# --- tiles of a level 0 service ----------------------------------------------------------

ROTTERDAM_INFO = "rotterdamspubliek_image.2.rp-rtsa-4001-1985-1014-01.json"  # 9102 x 6922


def rotterdam_v3() -> ImageService:
    """Rotterdam's info.json as a version 3 service would state it."""
    doc = json.loads((INFO / ROTTERDAM_INFO).read_text())
    doc = {k: v for k, v in doc.items() if k not in ("@context", "@id", "profile")}
    doc |= {"@context": "http://iiif.io/api/image/3/context.json", "type": "ImageService3"}
    doc |= {"id": "https://rotterdamspubliek.nl/iiif/v3/NL-RtSA", "profile": "level0"}
    return parse_info(doc)


def tiles_of(service: ImageService, plan) -> list[tuple[str, tuple[int, int], tuple[int, int]]]:
    """Each tile of a plan: its request (after the service id), place and size."""
    return [(tail(service, tile.url), tile.place, tile.size) for tile in plan.tiles]


def test_level_0_with_tiles_only_is_asked_for_its_tiles_at_the_largest_scale_factor_that_covers():
    rotterdam = info(ROTTERDAM_INFO)  # tiles of 512 at 1, 2, 4, 8 and 16; no sizes
    plan = tile_plan(rotterdam, TARGET)
    # At 16 the image is 569 x 433, which still covers 224: two tiles, the second the
    # 910 pixels left at the right edge, 57 pixels wide (910 / 16, rounded up).
    assert plan.scale_factor == 16 and plan.size == (569, 433)
    assert tiles_of(rotterdam, plan) == [
        ("/0,0,8192,6922/512,/0/default.jpg", (0, 0), (512, 433)),
        ("/8192,0,910,6922/57,/0/default.jpg", (512, 0), (57, 433)),
    ]
    assert plan.shows == (0, 0, 9102, 6922)
    assert plan.label == f"{rotterdam.id}#scaleFactor=16"


def test_tiles_at_a_smaller_scale_factor_when_the_target_asks_for_more():
    rotterdam = info(ROTTERDAM_INFO)
    plan = tile_plan(rotterdam, 434)  # 433 is short by one: 8, 1138 x 866, 3 x 2 tiles
    assert plan.scale_factor == 8 and plan.size == (1138, 866)
    assert tiles_of(rotterdam, plan) == [
        ("/0,0,4096,4096/512,/0/default.jpg", (0, 0), (512, 512)),
        ("/4096,0,4096,4096/512,/0/default.jpg", (512, 0), (512, 512)),
        ("/8192,0,910,4096/114,/0/default.jpg", (1024, 0), (114, 512)),
        ("/0,4096,4096,2826/512,/0/default.jpg", (0, 512), (512, 354)),
        ("/4096,4096,4096,2826/512,/0/default.jpg", (512, 512), (512, 354)),
        ("/8192,4096,910,2826/114,/0/default.jpg", (1024, 512), (114, 354)),
    ]


def test_version_3_tiles_are_asked_for_as_w_h():
    v3 = rotterdam_v3()
    assert tiles_of(v3, tile_plan(v3, TARGET)) == [
        ("/0,0,8192,6922/512,433/0/default.jpg", (0, 0), (512, 433)),
        ("/8192,0,910,6922/57,433/0/default.jpg", (512, 0), (57, 433)),
    ]


def test_a_tile_that_is_the_whole_image_is_asked_for_as_full():
    one = service(2, 0, width=4000, height=3000, tile_width=512, scale_factors=[1, 2, 4, 8])
    plan = tile_plan(one, TARGET)  # at 8: 500 x 375, within one tile
    assert tiles_of(one, plan) == [("/full/500,/0/default.jpg", (0, 0), (500, 375))]
    v3 = dataclasses.replace(one, version=3)
    assert tiles_of(v3, tile_plan(v3, TARGET)) == [
        ("/full/500,375/0/default.jpg", (0, 0), (500, 375))
    ]


def test_more_tiles_than_the_cap_are_not_asked_for():
    rotterdam = info(ROTTERDAM_INFO)
    assert tile_plan(rotterdam, 1000) is None  # at 4: 5 x 4 = 20 tiles of 512
    plan = tile_plan(rotterdam, 1000, max_tiles=20)
    assert plan.scale_factor == 4 and len(plan.tiles) == 20 and plan.size == (2276, 1731)


def test_a_region_is_asked_for_as_the_tiles_over_it():
    rotterdam = info(ROTTERDAM_INFO)
    # 1000 x 800: at 2 it is 500 x 400, which covers 224 (at 4, 250 x 200 would not).
    plan = tile_plan(rotterdam, TARGET, region="4000,3000,1000,800")
    assert plan.scale_factor == 2 and plan.shows == (3072, 2048, 2048, 2048)
    assert tiles_of(rotterdam, plan) == [
        ("/3072,2048,1024,1024/512,/0/default.jpg", (0, 0), (512, 512)),
        ("/4096,2048,1024,1024/512,/0/default.jpg", (512, 0), (512, 512)),
        ("/3072,3072,1024,1024/512,/0/default.jpg", (0, 512), (512, 512)),
        ("/4096,3072,1024,1024/512,/0/default.jpg", (512, 512), (512, 512)),
    ]
    # A small region at full scale: one tile, not the 63 MP master file.
    small = tile_plan(rotterdam, TARGET, region="100,100,300,300")
    assert small.scale_factor == 1 and tiles_of(rotterdam, small) == [
        ("/0,0,512,512/512,/0/default.jpg", (0, 0), (512, 512))
    ]
    # Past the bottom right corner: clipped as a server clips it (302 x 322 kept), two
    # edge tiles.
    corner = tile_plan(rotterdam, TARGET, region="8800,6600,2000,2000")
    assert corner.scale_factor == 1 and corner.shows == (8704, 6144, 398, 778)
    assert tiles_of(rotterdam, corner) == [
        ("/8704,6144,398,512/398,/0/default.jpg", (0, 0), (398, 512)),
        ("/8704,6656,398,266/398,/0/default.jpg", (0, 512), (398, 266)),
    ]


def test_tiles_are_not_the_way_for_every_other_service():
    tiled = {"width": 4000, "height": 3000, "tile_width": 512, "scale_factors": [1, 2, 4, 8]}
    assert tile_plan(service(2, 0, **tiled), TARGET) is not None
    assert tile_plan(service(2, 1, **tiled), TARGET) is None  # it scales: asked exactly
    assert tile_plan(service(2, 0, **{**tiled, "width": None}), TARGET) is None  # no size
    assert tile_plan(service(2, 0, **{**tiled, "tile_width": None}), TARGET) is None
    # A listed size covers the target: one request for it.
    uva = info("uvacreate_image.3.uvacreate-mmph-wae681.json")  # sizes and tiles
    assert tile_plan(uva, TARGET) is None
    # The whole image's tiles at full scale are the master file, in pieces.
    small = service(2, 0, **{**tiled, "width": 600, "height": 400, "scale_factors": [1, 2]})
    assert tile_plan(small, TARGET) is None
    assert tile_plan(service(2, 0, **tiled), TARGET, region="5000,0,10,10") is None  # outside


def test_tiles_too_small_for_the_target_are_the_largest_there_are():
    coarse = service(2, 0, width=1000, height=800, tile_width=256, scale_factors=[4, 8])
    plan = tile_plan(coarse, TARGET)  # at 4: 250 x 200, short of 224; nothing larger
    assert plan.scale_factor == 4 and plan.size == (250, 200)


def test_the_whole_image_in_one_tile_where_the_tree_goes_down_to_it():
    rotterdam = info(ROTTERDAM_INFO)  # at 16, 569 x 433: still two tiles of 512
    assert one_tile_picture(rotterdam) is None
    deeper = dataclasses.replace(rotterdam, scale_factors=[*rotterdam.scale_factors, 32, 64])
    assert tail(deeper, one_tile_picture(deeper)) == "/full/285,/0/default.jpg"  # at 32
    in_v3 = dataclasses.replace(deeper, version=3)
    assert tail(in_v3, one_tile_picture(in_v3)) == "/full/285,217/0/default.jpg"
    assert one_tile_picture(dataclasses.replace(deeper, level=1)) is None  # it scales
