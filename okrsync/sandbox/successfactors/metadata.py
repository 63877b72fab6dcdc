"""``$metadata`` in SuccessFactors' EDMX style (``tests/specs/successfactors/sample-metadata.xml``).

Two schemas like SF's: ``SFODataSet`` holds the entity container (entity sets, association
sets), ``SFOData`` the entity types and associations, each annotated with SF's ``sap:*``
attributes. Associations are named ``<nav>_of_<Type>`` with roles ``<Type>`` and
``asso_<nav>``, as in the sample. Built with lxml so every name and label is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from okrsync.sandbox.successfactors.odata import EntityType, Schema

EDMX = "http://schemas.microsoft.com/ado/2007/06/edmx"
EDM = "http://schemas.microsoft.com/ado/2008/09/edm"
M = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"
SF = "http://www.successfactors.com/edm/sf"
SAP = "http://www.successfactors.com/edm/sap"


def _b(flag: bool) -> str:
    return "true" if flag else "false"


def _sap(el: etree._Element, **attrs: str) -> None:
    for k, v in attrs.items():
        el.set(f"{{{SAP}}}{k.replace('_', '-')}", v)


def build_metadata(schema: Schema, names: Iterable[str] | None = None) -> bytes:
    """The EDMX for every entity type, or only ``names`` (scoped ``/User,EmpJob/$metadata``).

    Navigation properties whose target is outside the scope are left out, as SF does.
    """
    wanted = [n for n in (names or schema) if n in schema]
    types = [schema[n] for n in wanted]
    root = etree.Element(f"{{{EDMX}}}Edmx", nsmap={"edmx": EDMX}, Version="1.0")
    ds = etree.SubElement(root, f"{{{EDMX}}}DataServices", nsmap={"m": M})
    ds.set(f"{{{M}}}DataServiceVersion", "2.0")
    nsmap = {None: EDM, "sf": SF, "sap": SAP}
    set_schema = etree.SubElement(ds, f"{{{EDM}}}Schema", nsmap=nsmap, Namespace="SFODataSet")
    container = etree.SubElement(set_schema, f"{{{EDM}}}EntityContainer", Name="EntityContainer")
    container.set(f"{{{M}}}IsDefaultEntityContainer", "true")
    type_schema = etree.SubElement(ds, f"{{{EDM}}}Schema", nsmap=nsmap, Namespace="SFOData")

    for etype in types:
        es = etree.SubElement(
            container, f"{{{EDM}}}EntitySet", Name=etype.name, EntityType=f"SFOData.{etype.name}"
        )
        _sap(
            es,
            label=etype.label or etype.name,
            creatable=_b(etype.creatable),
            updatable=_b(etype.updatable),
            upsertable=_b(etype.upsertable),
            deletable=_b(etype.deletable),
        )
        doc = etree.SubElement(es, f"{{{EDM}}}Documentation")
        etree.SubElement(doc, f"{{{EDM}}}Summary").text = etype.label or etype.name
        if etype.effective_dated:
            etree.SubElement(
                doc, f"{{{EDM}}}LongDescription"
            ).text = "Effective-dated: asOfDate, fromDate and toDate select the records."
    for etype in types:
        _entity_type(type_schema, etype, wanted)
    for etype in types:
        for nav in etype.navs:
            if nav.target not in wanted:
                continue
            name = f"{nav.name}_of_{etype.name}"
            assoc = etree.SubElement(type_schema, f"{{{EDM}}}Association", Name=name)
            etree.SubElement(
                assoc, f"{{{EDM}}}End", Type=f"SFOData.{etype.name}", Multiplicity="*", Role=etype.name
            )
            etree.SubElement(
                assoc,
                f"{{{EDM}}}End",
                Type=f"SFOData.{nav.target}",
                Multiplicity="*" if nav.many else "0..1",
                Role=f"asso_{nav.name}",
            )
            aset = etree.SubElement(
                container, f"{{{EDM}}}AssociationSet", Name=name, Association=f"SFOData.{name}"
            )
            etree.SubElement(aset, f"{{{EDM}}}End", EntitySet=etype.name, Role=etype.name)
            etree.SubElement(aset, f"{{{EDM}}}End", EntitySet=nav.target, Role=f"asso_{nav.name}")
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    return body


def _entity_type(parent: etree._Element, etype: EntityType, wanted: list[str]) -> None:
    et = etree.SubElement(parent, f"{{{EDM}}}EntityType", Name=etype.name)
    key = etree.SubElement(et, f"{{{EDM}}}Key")
    for k in etype.keys:
        etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name=k)
    for p in etype.props:
        el = etree.SubElement(et, f"{{{EDM}}}Property", Name=p.name, Type=p.edm, Nullable=_b(p.nullable))
        _sap(
            el,
            required=_b(p.required),
            creatable=_b(p.creatable),
            updatable=_b(p.updatable),
            upsertable=_b(p.upsertable),
            visible="true",
            sortable="true",
            filterable=_b(p.filterable),
        )
        if p.max_length is not None and p.declare_max_length:
            el.set("MaxLength", str(p.max_length))
        if p.edm == "Edm.DateTime":
            _sap(el, display_format="Date")
        if p.picklist:
            _sap(el, picklist=p.picklist)
        _sap(el, label=p.label or p.name)
    for nav in etype.navs:
        if nav.target not in wanted:
            continue
        el = etree.SubElement(
            et,
            f"{{{EDM}}}NavigationProperty",
            Name=nav.name,
            Relationship=f"SFOData.{nav.name}_of_{etype.name}",
            FromRole=etype.name,
            ToRole=f"asso_{nav.name}",
        )
        _sap(
            el,
            required="false",
            creatable="false",
            updatable="false",
            upsertable=_b(not nav.many),
            visible="true",
            sortable="false",
            filterable="true",
            label=nav.label or nav.name,
        )
