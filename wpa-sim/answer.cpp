#include "wpa-sim/answer.hpp"

#include "aka/identity.hpp"

namespace mcimd::wpasim {
namespace {

SecureString secure(const std::string& s) { return SecureString(s.begin(), s.end()); }

Answer umts_fail(uint32_t id, std::string why) {
  return Answer{secure(format_umts_fail(id)), "UMTS-FAIL: " + std::move(why), true};
}

Answer answer_umts(uint32_t id, const UmtsChallenge& c, Usim& usim) {
  auto result = usim.umts_authenticate(c.rand, c.autn);
  if (!result) return umts_fail(id, result.error().short_name() + ": " + result.error().message);
  if (result->auts) {
    auto command = format_umts_auts(id, *result->auts);
    if (!command) return umts_fail(id, "mcimd answered a malformed AUTS: " + command.error().message);
    return Answer{secure(*command), "UMTS-AUTS: SQN out of range, the network is asked to resynchronise", false};
  }
  if (!result->res || !result->ck || !result->ik) return umts_fail(id, "mcimd answered neither RES, CK, IK nor AUTS");
  auto command = format_umts_auth(id, *result->res, *result->ck, *result->ik);
  if (!command) return umts_fail(id, "mcimd answered a malformed result: " + command.error().message);
  return Answer{std::move(*command), "UMTS-AUTH", false};
}

Answer answer_gsm(uint32_t id, const GsmChallenge& c, Usim& usim) {
  auto gsm_fail = [id](std::string why) {
    return Answer{secure(format_gsm_fail(id)), "GSM-FAIL: " + std::move(why), true};
  };
  auto result = usim.gsm_authenticate(c.rands);
  if (!result) return gsm_fail(result.error().short_name() + ": " + result.error().message);
  std::vector<GsmTriplet> triplets;
  for (const auto& t : *result) triplets.push_back(GsmTriplet{t.sres, t.kc});
  auto command = format_gsm_auth(id, triplets, c.rands.size());
  if (!command) return gsm_fail("mcimd answered a malformed result: " + command.error().message);
  return Answer{std::move(*command), "GSM-AUTH", false};
}

}  // namespace

Answer answer(const SimRequest& request, Usim& usim) {
  if (const auto* umts = std::get_if<UmtsChallenge>(&request.challenge))
    return answer_umts(request.network_id, *umts, usim);
  if (const auto* gsm = std::get_if<GsmChallenge>(&request.challenge))
    return answer_gsm(request.network_id, *gsm, usim);
  return Answer{{}, "an identity question is not a challenge", true};
}

std::optional<Answer> answer_identity(uint32_t network_id, std::string_view eap_methods, Usim& usim,
                                      std::optional<int> mnc_length) {
  const auto method = aka::first_sim_method(eap_methods);
  if (!method) return std::nullopt;
  auto no_identity = [](std::string why) { return Answer{{}, "no identity: " + std::move(why), true}; };
  auto profile = usim.subscriber();
  if (!profile) return no_identity(profile.error().short_name() + ": " + profile.error().message);
  auto identity = aka::permanent_identity(*method, profile->imsi, profile->operator_id, mnc_length);
  if (!identity) return no_identity(identity.error().message);
  auto command = format_identity(network_id, *identity);
  if (!command) return no_identity(command.error().message);
  // The IMSI stays out of the log: it identifies the subscriber.
  return Answer{secure(*command), std::string("the permanent identity for ") + aka::method_name(*method), false};
}

}  // namespace mcimd::wpasim
