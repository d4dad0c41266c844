// PCR selections: parsing, conversion to TPML_PCR_SELECTION, reading and extending.
#include <algorithm>
#include <charconv>
#include <cstring>

#include "tpm/impl.hpp"

namespace mcimd::tpm {

namespace {

// PC Client Platform TPM Profile §4.6: a PC Client TPM has 24 PCRs per bank.
constexpr unsigned kPcrCount = 24;
constexpr uint8_t kSelectBytes = kPcrCount / 8;

bool selected(const TPMS_PCR_SELECTION& s, unsigned pcr) {
  return pcr / 8 < s.sizeofSelect && (s.pcrSelect[pcr / 8] & (1u << (pcr % 8)));
}

}  // namespace

std::optional<BankInfo> bank_info(std::string_view bank) {
  if (bank == "sha1") return BankInfo{TPM2_ALG_SHA1, TPM2_SHA1_DIGEST_SIZE};
  if (bank == "sha256") return BankInfo{TPM2_ALG_SHA256, TPM2_SHA256_DIGEST_SIZE};
  if (bank == "sha384") return BankInfo{TPM2_ALG_SHA384, TPM2_SHA384_DIGEST_SIZE};
  if (bank == "sha512") return BankInfo{TPM2_ALG_SHA512, TPM2_SHA512_DIGEST_SIZE};
  return std::nullopt;
}

Result<PcrSelection> parse_pcr_selection(std::string_view text) {
  auto quoted = "'" + std::string(text) + "'";
  auto colon = text.find(':');
  if (colon == std::string_view::npos)
    return fail(Code::InvalidArgument, "PCR selection " + quoted + " is not BANK:PCR[,PCR...] (e.g. sha256:7,14)");
  PcrSelection sel;
  sel.bank = std::string(text.substr(0, colon));
  if (!bank_info(sel.bank))
    return fail(Code::InvalidArgument, "Unknown PCR bank '" + sel.bank + "' in PCR selection " + quoted +
                                           "; expected sha1, sha256, sha384 or sha512");
  auto list = text.substr(colon + 1);
  if (list.empty()) return fail(Code::InvalidArgument, "PCR selection " + quoted + " lists no PCR");
  while (true) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    unsigned index = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), index);
    if (item.empty() || ec != std::errc() || end != item.data() + item.size() || index >= kPcrCount)
      return fail(Code::InvalidArgument, "'" + std::string(item) + "' in PCR selection " + quoted +
                                             " is not a PCR index 0-23");
    if (std::find(sel.pcrs.begin(), sel.pcrs.end(), index) != sel.pcrs.end())
      return fail(Code::InvalidArgument, "PCR " + std::to_string(index) + " is listed twice in PCR selection " + quoted);
    sel.pcrs.push_back(index);
    if (comma == std::string_view::npos) break;
    list = list.substr(comma + 1);
  }
  std::sort(sel.pcrs.begin(), sel.pcrs.end());
  return sel;
}

std::string to_string(const PcrSelection& sel) {
  std::string out = sel.bank + ":";
  for (std::size_t i = 0; i < sel.pcrs.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(sel.pcrs[i]);
  }
  return out;
}

Result<TPML_PCR_SELECTION> to_tpml(const PcrSelection& sel) {
  auto info = bank_info(sel.bank);
  if (!info) return fail(Code::InvalidArgument, "Unknown PCR bank '" + sel.bank + "'");
  TPML_PCR_SELECTION out{};
  out.count = 1;
  out.pcrSelections[0].hash = info->alg;
  out.pcrSelections[0].sizeofSelect = kSelectBytes;
  for (unsigned pcr : sel.pcrs) {
    if (pcr >= kPcrCount) return fail(Code::InvalidArgument, "PCR " + std::to_string(pcr) + " does not exist (0-23)");
    out.pcrSelections[0].pcrSelect[pcr / 8] |= static_cast<uint8_t>(1u << (pcr % 8));
  }
  return out;
}

Result<std::vector<PcrValue>> Context::pcr_read(const PcrSelection& sel) {
  auto& impl = *impl_;
  auto remaining = MCIMD_TRY(to_tpml(sel));
  auto& want = remaining.pcrSelections[0];
  std::vector<std::optional<Bytes>> values(kPcrCount);
  // TPM2_PCR_Read returns at most 8 digests (TPML_DIGEST) per call, lowest indices first.
  while (std::any_of(want.pcrSelect, want.pcrSelect + kSelectBytes, [](uint8_t b) { return b != 0; })) {
    EsysPtr<TPML_PCR_SELECTION> got;
    EsysPtr<TPML_DIGEST> digests;
    MCIMD_CHECK(impl.call("read PCRs " + to_string(sel), [&] {
      return Esys_PCR_Read(impl.esys.get(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &remaining, nullptr,
                           OutPtr(got), OutPtr(digests));
    }));
    uint32_t next = 0;
    for (uint32_t s = 0; s < got->count; ++s) {
      const auto& part = got->pcrSelections[s];
      if (part.hash != want.hash) continue;
      for (unsigned pcr = 0; pcr < kPcrCount && next < digests->count; ++pcr) {
        if (!selected(part, pcr)) continue;
        const auto& d = digests->digests[next++];
        values[pcr] = Bytes(d.buffer, d.buffer + d.size);
        want.pcrSelect[pcr / 8] &= static_cast<uint8_t>(~(1u << (pcr % 8)));
      }
    }
    if (next == 0)
      return fail(Code::Unsupported, "Failed to read PCRs " + to_string(sel) + ": the " + sel.bank +
                                         " bank is not active on this TPM");
  }
  std::vector<PcrValue> out;
  out.reserve(sel.pcrs.size());
  for (unsigned pcr : sel.pcrs) out.push_back(PcrValue{pcr, *values[pcr]});
  return out;
}

Status Context::pcr_extend(unsigned pcr, std::string_view bank, std::span<const uint8_t> digest) {
  auto info = bank_info(bank);
  if (!info) return fail(Code::InvalidArgument, "Unknown PCR bank '" + std::string(bank) + "'");
  if (pcr >= kPcrCount) return fail(Code::InvalidArgument, "PCR " + std::to_string(pcr) + " does not exist (0-23)");
  if (digest.size() != info->digest_size)
    return fail(Code::InvalidArgument, "A " + std::string(bank) + " digest is " + std::to_string(info->digest_size) +
                                           " bytes, not " + std::to_string(digest.size()));
  TPML_DIGEST_VALUES values{};
  values.count = 1;
  values.digests[0].hashAlg = info->alg;
  std::memcpy(&values.digests[0].digest, digest.data(), digest.size());
  auto& impl = *impl_;
  return impl.call("extend PCR " + std::string(bank) + ":" + std::to_string(pcr), [&] {
    return Esys_PCR_Extend(impl.esys.get(), ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &values);
  });
}

}  // namespace mcimd::tpm
